package dev.batchgateway.web;

import dev.batchgateway.completion.CallerPresence;
import org.apache.coyote.ActionCode;

/**
 * Tells whether the client of a waiting {@code /complete} request has closed its connection.
 *
 * <p>Tomcat does not notice a client leaving while an async request waits: it reads from the socket only when the
 * application does (an idle async request's socket is not registered with the poller), so no
 * {@code AsyncListener.onError} arrives until the answer is written. This probe makes Tomcat try one non-blocking
 * read on the connection ({@code ActionCode.AVAILABLE} with a read requested): end of stream or a reset means the
 * client has gone. Bytes waiting there would be a pipelined next request, which no mainstream client sends; it also
 * counts as gone.
 *
 * <p>The probe runs on the scheduler's thread; it only touches the connection while the request is unanswered, and
 * {@link #answered()} takes the same lock, so it never races the container writing the answer and recycling the
 * request for the next one.
 */
final class ConnectionProbe implements CallerPresence {

    static final String ATTRIBUTE = ConnectionProbe.class.getName();

    private final org.apache.coyote.Request connection;
    private boolean answered;

    ConnectionProbe(org.apache.coyote.Request connection) {
        this.connection = connection;
    }

    @Override
    public synchronized boolean stillWaiting() {
        if (answered) {
            return true;
        }
        connection.action(ActionCode.AVAILABLE, Boolean.TRUE);
        return connection.getAvailable() == 0;
    }

    /** Called before the answer is handed to the container; the probe no longer touches the connection. */
    synchronized void answered() {
        answered = true;
    }
}
