package dev.batchgateway.web;

import java.util.concurrent.Executors;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.springframework.boot.jetty.JettyWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.core.Ordered;
import org.springframework.stereotype.Component;

/**
 * Jetty set up for thousands of clients that wait for their batch:
 * <ul>
 * <li>Jetty's own work (accepting connections, the selector that notices readable ones) runs on a few platform
 *     threads, and every request's handling on a virtual thread of its own. With Spring Boot's all-virtual pool the
 *     acceptor and the selector were virtual threads too, queued for the two carriers behind thousands of runnable
 *     request threads: in a burst of 10,000 clients connections waited unaccepted and unread until their header
 *     timeout closed them (issue 32). The OS schedules platform threads beside the carriers, so they keep turning;
 * <li>no cap on requests at once: Spring Boot's virtual-thread pool ran at most {@code server.jetty.threads.max}
 *     (200) and held the rest unseen, before the gateway's queue, where no deadline, no departed-client check and no
 *     503 for a full queue apply. The gateway's own queue ({@code GATEWAY_QUEUE_CAPACITY}) is the bound;
 * <li>no per-connection header cache: Jetty keeps an index of up to 1,024 header fields on every connection (about
 *     90 KB once built), to parse repeated headers of a kept-alive connection faster. Without it a waiting client
 *     costs about 10 KB of heap (docs/performance.md).
 * </ul>
 */
@Component
class LeanConnections implements WebServerFactoryCustomizer<JettyWebServerFactory>, Ordered {

    /** Platform threads for Jetty's own work: a selector and an acceptor per connector, and what they hand on. */
    static final int MAX_PLATFORM_THREADS = 32;
    static final int MIN_PLATFORM_THREADS = 4;

    @Override
    public void customize(JettyWebServerFactory factory) {
        var threads = new QueuedThreadPool(MAX_PLATFORM_THREADS, MIN_PLATFORM_THREADS);
        threads.setName("jetty");
        // Jetty runs blocking work (a servlet request) on this executor, one virtual thread each, without a limit
        threads.setVirtualThreadsExecutor(Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("request-", 0).factory()));
        factory.setThreadPool(threads);
        factory.addServerCustomizers(server -> {
            for (var connector : server.getConnectors()) {
                var http = connector.getConnectionFactory(HttpConnectionFactory.class);
                if (http != null) {
                    http.getHttpConfiguration().setHeaderCacheSize(0);
                }
            }
        });
    }

    /** After Spring Boot's own thread-pool customizer, whose all-virtual pool this one replaces. */
    @Override
    public int getOrder() {
        return Ordered.LOWEST_PRECEDENCE;
    }
}
