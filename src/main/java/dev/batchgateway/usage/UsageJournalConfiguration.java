package dev.batchgateway.usage;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Locale;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The usage journal's directory and bound, from GATEWAY_USAGE_JOURNAL_DIR and GATEWAY_USAGE_JOURNAL_MAX_SIZE. Journals
 * are kept per database, in a folder named after its URL: a gateway adopts only the journals of dead instances that
 * wrote for its own database (with one shared default directory, a gateway started on this machine for another
 * database replayed a dead one's rows into the wrong table).
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(UsageSettings.class)
class UsageJournalConfiguration {

    /** Closed after the usage ledger's last flush (a bean destroyed after every lifecycle phase has stopped). */
    @Bean(destroyMethod = "close")
    FileUsageJournal usageJournal(UsageSettings settings, @Value("${spring.datasource.url:}") String databaseUrl) {
        String directory = settings.journalDir();
        try {
            return new FileUsageJournal(Path.of(directory).resolve(folderOf(databaseUrl)),
                    settings.journalMaxSize().toBytes());
        } catch (UncheckedIOException unusable) {
            // without a journal no completion could be served while PostgreSQL is away: refuse to start instead
            throw new InvalidConfigurationException("GATEWAY_USAGE_JOURNAL_DIR=" + directory
                    + " cannot hold the usage journal (" + unusable.getCause() + "): set it to a directory the gateway can write");
        }
    }

    /**
     * The folder of a database's journals: its URL's host, port and database, without credentials or parameters, e.g.
     * {@code postgresql-db.internal-5432-gateway} for {@code jdbc:postgresql://user:secret@db.internal:5432/gateway?ssl=true}.
     */
    static String folderOf(String databaseUrl) {
        String url = databaseUrl == null ? "" : databaseUrl.strip();
        url = url.startsWith("jdbc:") ? url.substring("jdbc:".length()) : url;
        int parameters = url.indexOf('?');
        url = parameters < 0 ? url : url.substring(0, parameters);
        int scheme = url.indexOf("://");
        int credentials = url.lastIndexOf('@');
        if (scheme >= 0 && credentials > scheme) {
            url = url.substring(0, scheme + 3) + url.substring(credentials + 1);
        }
        String folder = url.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9._]+", "-").replaceAll("^[-.]+|-+$", "");
        return folder.isEmpty() ? "default-database" : folder;
    }
}
