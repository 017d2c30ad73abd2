package dev.batchgateway.usage;

import dev.batchgateway.GatewayProperties;
import dev.batchgateway.completion.UsageJournal;
import java.nio.file.Path;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The usage journal's directory and bound, from GATEWAY_USAGE_JOURNAL_DIR and GATEWAY_USAGE_JOURNAL_MAX_SIZE. */
@Configuration(proxyBeanMethods = false)
class UsageJournalConfiguration {

    /** Closed after the usage ledger's last flush (a bean destroyed after every lifecycle phase has stopped). */
    @Bean(destroyMethod = "close")
    FileUsageJournal usageJournal(GatewayProperties properties) {
        return new FileUsageJournal(Path.of(properties.usage().journalDir()), properties.usage().journalMaxSize().toBytes());
    }
}
