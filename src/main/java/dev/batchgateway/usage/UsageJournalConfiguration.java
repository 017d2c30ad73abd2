package dev.batchgateway.usage;

import dev.batchgateway.GatewayProperties;
import dev.batchgateway.InvalidConfigurationException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The usage journal's directory and bound, from GATEWAY_USAGE_JOURNAL_DIR and GATEWAY_USAGE_JOURNAL_MAX_SIZE. */
@Configuration(proxyBeanMethods = false)
class UsageJournalConfiguration {

    /** Closed after the usage ledger's last flush (a bean destroyed after every lifecycle phase has stopped). */
    @Bean(destroyMethod = "close")
    FileUsageJournal usageJournal(GatewayProperties properties) {
        String directory = properties.usage().journalDir();
        try {
            return new FileUsageJournal(Path.of(directory), properties.usage().journalMaxSize().toBytes());
        } catch (UncheckedIOException unusable) {
            // without a journal no completion could be served while PostgreSQL is away: refuse to start instead
            throw new InvalidConfigurationException("GATEWAY_USAGE_JOURNAL_DIR=" + directory
                    + " cannot hold the usage journal (" + unusable.getCause() + "): set it to a directory the gateway can write");
        }
    }
}
