package dev.batchgateway.web;

import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.springframework.boot.actuate.autoconfigure.web.ManagementContextConfiguration;
import org.springframework.boot.actuate.autoconfigure.web.ManagementContextType;
import org.springframework.boot.jetty.JettyWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.context.ApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.core.Ordered;

/**
 * The management port (health, readiness, metrics) answers on a few platform threads of its own, never on virtual
 * threads: with 10,000 callers at the API port their threads share the two virtual-thread carriers, and a health check
 * queued behind them took tens of seconds (issue 32). The OS schedules these threads beside the carriers, so a probe
 * waits for the CPU, not for every runnable request before it.
 *
 * <p>Component scanning finds this class in the application's own context too (a management context configuration is a
 * {@code @Configuration}): there, whose context has no parent, it leaves the API port's pool alone.
 */
@ManagementContextConfiguration(value = ManagementContextType.CHILD, proxyBeanMethods = false)
class ManagementThreads {

    /** Enough for probes and scrapes at once; each blocks at most for a health indicator's own timeout. */
    static final int MAX_THREADS = 16;

    @Bean
    static WebServerFactoryCustomizer<JettyWebServerFactory> managementPlatformThreads(ApplicationContext context) {
        boolean managementContext = context.getParent() != null;
        return managementContext ? new PlatformThreads() : factory -> { };
    }

    /** After Spring Boot's own thread-pool customizer, whose all-virtual pool this one replaces. */
    private static final class PlatformThreads implements WebServerFactoryCustomizer<JettyWebServerFactory>, Ordered {
        @Override
        public void customize(JettyWebServerFactory factory) {
            var threads = new QueuedThreadPool(MAX_THREADS, 2);
            threads.setName("management");
            factory.setThreadPool(threads);
        }

        @Override
        public int getOrder() {
            return Ordered.LOWEST_PRECEDENCE;
        }
    }
}
