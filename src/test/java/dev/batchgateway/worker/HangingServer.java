package dev.batchgateway.worker;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.CountDownLatch;

/**
 * A worker that accepts connections, reads what it is sent and never answers. It notices when a POST (a batch, not a
 * health check) arrives, {@link #posted}, and when the caller closes such a connection, {@link #closedByCaller}.
 */
public final class HangingServer implements AutoCloseable {

    public final CountDownLatch accepted = new CountDownLatch(1);
    public final CountDownLatch posted = new CountDownLatch(1);
    public final CountDownLatch closedByCaller = new CountDownLatch(1);
    private final ServerSocket socket;

    public HangingServer() {
        try {
            socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Thread.ofVirtual().name("hanging-server").start(this::accept);
    }

    public String url() {
        return "http://127.0.0.1:" + socket.getLocalPort();
    }

    private void accept() {
        while (!socket.isClosed()) {
            try {
                Socket connection = socket.accept();
                accepted.countDown();
                Thread.ofVirtual().start(() -> hold(connection));
            } catch (IOException closed) {
                return;
            }
        }
    }

    private void hold(Socket connection) {
        boolean post = false;
        try (connection; InputStream in = connection.getInputStream()) {
            byte[] buffer = new byte[8192];
            int read;
            while ((read = in.read(buffer)) >= 0) {
                // read the request and whatever follows, answer nothing
                if (new String(buffer, 0, read, java.nio.charset.StandardCharsets.US_ASCII).startsWith("POST ")) {
                    post = true;
                    posted.countDown();
                }
            }
        } catch (IOException reset) {
            // closed by the caller too
        }
        if (post) {
            closedByCaller.countDown();
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
