package dev.batchgateway.worker;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.CountDownLatch;

/**
 * A worker that accepts connections, reads what it is sent and never answers. It notices when the caller closes the
 * connection: {@link #closedByCaller} counts down.
 */
public final class HangingServer implements AutoCloseable {

    public final CountDownLatch accepted = new CountDownLatch(1);
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
        try (connection; InputStream in = connection.getInputStream()) {
            byte[] buffer = new byte[8192];
            while (in.read(buffer) >= 0) {
                // read the request and whatever follows, answer nothing
            }
            closedByCaller.countDown();
        } catch (IOException reset) {
            closedByCaller.countDown();
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
