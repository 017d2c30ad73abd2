package dev.batchgateway;

import dev.batchgateway.identity.AdminToken;
import dev.batchgateway.identity.ApiKeyStore;
import dev.batchgateway.identity.ApiKeys;
import dev.batchgateway.identity.Callers;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The injector for identity: API keys on their JDBC store, and the rules of who may call what. */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(IdentityProperties.class)
class IdentityConfiguration {

    /** How long a key lookup is trusted: the bound on a revocation reaching every other instance (contract: 5 s). */
    static final Duration KEY_CACHE_TIME = Duration.ofSeconds(2);
    /** Most key digests cached at once, about 2 MB; made-up keys are cached too, so a flood of them stays bounded. */
    static final int KEY_CACHE_CAPACITY = 10_000;
    /** How often last-used times are written, for all keys used in between, in one statement. */
    static final Duration LAST_USE_WRITTEN_EVERY = Duration.ofSeconds(10);

    private static final Logger LOG = LoggerFactory.getLogger(IdentityConfiguration.class);

    @Bean(destroyMethod = "close")
    ApiKeys apiKeys(ApiKeyStore store) {
        return new ApiKeys(store, Clock.systemUTC(), new SecureRandom(), KEY_CACHE_TIME, KEY_CACHE_CAPACITY,
                        LAST_USE_WRITTEN_EVERY)
                .start();
    }

    @Bean
    Callers callers(ApiKeys keys, IdentityProperties properties) {
        if (!properties.keysRequired()) {
            LOG.warn("GATEWAY_AUTH=none: API keys are off and the body's user_id is trusted; "
                    + "run this only behind a proxy that authenticates callers");
        }
        return new Callers(keys, Optional.ofNullable(properties.adminToken()).map(AdminToken::new), properties.keysRequired());
    }
}
