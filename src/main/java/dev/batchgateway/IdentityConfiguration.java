package dev.batchgateway;

import com.github.benmanes.caffeine.cache.Ticker;
import dev.batchgateway.identity.AdminTokens;
import dev.batchgateway.identity.ApiKeyStore;
import dev.batchgateway.identity.ApiKeys;
import dev.batchgateway.identity.Callers;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The injector for identity: API keys on their JDBC store, and the rules of who may call what. */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties({IdentityProperties.class, KeyProperties.class})
class IdentityConfiguration {

    /** How old a key's answer may be before it is re-checked; twice it, plus a lookup, bounds revocation (contract: 5 s). */
    static final Duration KEY_RECHECK_AFTER = Duration.ofSeconds(2);
    /** Most found keys cached at once, about 2 MB. */
    static final int KEY_CACHE_CAPACITY = 10_000;
    /** Most unknown digests cached at once, apart from found keys: a flood of made-up keys never evicts a real one. */
    static final int UNKNOWN_KEY_CACHE_CAPACITY = 10_000;
    /**
     * Longest a request waits for a key lookup; a slower database is taken as away (contract: unknown keys 503 within
     * 1 s). Not shorter: on a loaded machine a first lookup took over 300 ms, and every caller of a new key got 503.
     */
    static final Duration KEY_LOOKUP_WAIT = Duration.ofMillis(800);
    /** While the database is away, how often one key lookup checks whether it is back. */
    static final Duration KEY_STORE_PROBE_EVERY = Duration.ofSeconds(1);
    /** Most lookups of keys without an answer at once (a flood beyond it gets 503): a few times the pool's 10 connections. */
    static final int KEY_LOOKUPS_AT_ONCE = 32;
    /** How often last-used times are written, for all keys used in between, in one statement. */
    static final Duration LAST_USE_WRITTEN_EVERY = Duration.ofSeconds(10);

    private static final Logger LOG = LoggerFactory.getLogger(IdentityConfiguration.class);

    @Bean(destroyMethod = "close")
    ApiKeys apiKeys(ApiKeyStore store, KeyProperties properties) {
        var caching = new ApiKeys.Caching(KEY_RECHECK_AFTER, properties.maxStaleness(), KEY_LOOKUP_WAIT,
                KEY_STORE_PROBE_EVERY, KEY_CACHE_CAPACITY, UNKNOWN_KEY_CACHE_CAPACITY, KEY_LOOKUPS_AT_ONCE);
        Executor lookupRunner = lookup -> Thread.ofVirtual().name("api-key-lookup").start(lookup);
        return new ApiKeys(store, Clock.systemUTC(), Ticker.systemTicker(), lookupRunner, new SecureRandom(), caching,
                        LAST_USE_WRITTEN_EVERY)
                .start();
    }

    @Bean
    AdminTokens adminTokens(IdentityProperties properties) {
        var tokens = new AdminTokens(properties.allAdminTokens());
        if (!tokens.isEmpty()) {
            // the ids only (not secret), so an operator rotating tokens sees which ones each instance accepts
            LOG.info("admin API enabled for {} admin token(s), ids {}", tokens.ids().size(), tokens.ids());
        }
        return tokens;
    }

    @Bean
    Callers callers(ApiKeys keys, AdminTokens adminTokens, IdentityProperties properties) {
        if (!properties.keysRequired()) {
            LOG.warn("GATEWAY_AUTH=none: API keys are off and the body's user_id is trusted; "
                    + "run this only behind a proxy that authenticates callers");
        }
        return new Callers(keys, adminTokens, properties.keysRequired());
    }
}
