package dev.batchgateway.web;

import java.io.IOException;
import java.nio.channels.SelectableChannel;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.jetty.io.SelectorManager;

/**
 * At most {@code GATEWAY_MAX_CONNECTIONS} open connections on the API port: a connection beyond them is closed the moment
 * it is accepted, so a flood costs the gateway a file descriptor for an instant, not for as long as the flood holds it,
 * and the descriptors the database pool and the workers need stay free. Jetty's own {@code NetworkConnectionLimit} stops
 * accepting instead, which leaves the excess waiting unseen in the listen backlog; this answers them at once.
 */
final class ConnectionCap implements SelectorManager.AcceptListener {

    private final int maxConnections;
    private final Runnable onRefused;
    private final Set<SelectableChannel> open = ConcurrentHashMap.newKeySet();
    private final AtomicInteger count = new AtomicInteger();

    /** @param onRefused told of every connection closed for the cap (a metric) */
    ConnectionCap(int maxConnections, Runnable onRefused) {
        this.maxConnections = maxConnections;
        this.onRefused = onRefused;
    }

    @Override
    public void onAccepting(SelectableChannel channel) {
        if (count.getAndUpdate(n -> n < maxConnections ? n + 1 : n) < maxConnections) {
            open.add(channel);
            return;
        }
        onRefused.run();
        try {
            channel.close(); // Jetty then fails to register it and forgets it (onAcceptFailed)
        } catch (IOException alreadyGone) {
            // closed either way
        }
    }

    @Override
    public void onAcceptFailed(SelectableChannel channel, Throwable cause) {
        release(channel);
    }

    @Override
    public void onClosed(SelectableChannel channel) {
        release(channel);
    }

    /** Open connections counted against the cap. */
    int open() {
        return count.get();
    }

    private void release(SelectableChannel channel) {
        if (open.remove(channel)) {
            count.decrementAndGet();
        }
    }
}
