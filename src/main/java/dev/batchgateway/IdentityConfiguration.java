package dev.batchgateway;

import com.github.benmanes.caffeine.cache.Ticker;
import dev.batchgateway.identity.AdminTokens;
import dev.batchgateway.identity.ApiKeyStore;
import dev.batchgateway.identity.ApiKeys;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.identity.IdentitySettings;
import dev.batchgateway.identity.KeySettings;
import dev.batchgateway.identity.KeyStoreUnavailableException;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.web.server.context.WebServerGracefulShutdownLifecycle;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.ConfigurableEnvironment;

/** The injector for identity: API keys on their JDBC store, and the rules of who may call what. */
@Configuration(proxyBeanMethods = false)
class IdentityConfiguration {

    private static final Logger LOG = LoggerFactory.getLogger(IdentityConfiguration.class);
    private static final int LOOKUP_THREADS = 8;

    @Bean
    IdentitySettings identitySettings(ConfigurableEnvironment environment) {
        return SettingsCheck.bind(environment, "gateway.identity", IdentitySettings.class);
    }

    @Bean
    KeySettings keySettings(ConfigurableEnvironment environment) {
        return SettingsCheck.bind(environment, "gateway.key", KeySettings.class);
    }

    @Bean(destroyMethod = "close")
    ApiKeys apiKeys(ApiKeyStore store, KeySettings settings) {
        // Platform threads, not virtual ones: a lookup started on a virtual thread queued on the carriers behind every
        // request of a burst, and on a cold, loaded instance took longer than the lookup wait (503s, then nginx's 502s).
        // A few suffice (the database pool has 10 connections); idle ones end.
        var lookupRunner = new ThreadPoolExecutor(LOOKUP_THREADS, LOOKUP_THREADS, 30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
                Thread.ofPlatform().name("api-key-lookup-", 0).daemon().factory());
        lookupRunner.allowCoreThreadTimeOut(true);
        return new ApiKeys(store, Clock.systemUTC(), Ticker.systemTicker(), lookupRunner, new SecureRandom(), settings.caching(),
                        settings.lastUseWrittenEvery())
                .start();
    }

    /**
     * Warms the key cache just before the web server opens its port (which starts in a later lifecycle phase), so that
     * the answers are fresh when the first requests come.
     */
    @Bean
    SmartLifecycle keyCacheWarmUp(ApiKeys keys) {
        return PhasedLifecycle.of(WebServerGracefulShutdownLifecycle.SMART_LIFECYCLE_PHASE - 2048, () -> {
            long began = System.nanoTime();
            try {
                int loaded = keys.warmUp();
                LOG.info("key cache warmed with {} key(s) in {} ms", loaded, (System.nanoTime() - began) / 1_000_000);
            } catch (KeyStoreUnavailableException away) {
                LOG.warn("key cache not warmed, keys are looked up as they come: {}", away.getMessage());
            }
        }, () -> {});
    }

    @Bean
    AdminTokens adminTokens(IdentitySettings properties) {
        var tokens = new AdminTokens(properties.allAdminTokens());
        if (!tokens.isEmpty()) {
            // the ids only (not secret), so an operator rotating tokens sees which ones each instance accepts
            LOG.info("admin API enabled for {} admin token(s), ids {}", tokens.ids().size(), tokens.ids());
        }
        return tokens;
    }

    @Bean
    Callers callers(ApiKeys keys, AdminTokens adminTokens, IdentitySettings properties) {
        if (!properties.keysRequired()) {
            LOG.warn("GATEWAY_AUTH=none: API keys are off and the body's user_id is trusted; "
                    + "run this only behind a proxy that authenticates callers");
        }
        return new Callers(keys, adminTokens, properties.keysRequired());
    }
}
