package dev.batchgateway;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;

/**
 * A TCP link to PostgreSQL that a test can cut, as a network partition would: once {@link #cut()}, nothing more
 * crosses it either way and new connections are accepted but never answered (a black hole, not a refusal), so the
 * gateway behind it waits for its own timeouts. {@link #heal()} closes every connection it carried, as a partition
 * that ends leaves them broken, and forwards new ones again.
 */
final class DatabasePartition implements AutoCloseable {

    private final ServerSocket server;
    private final int databasePort;
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
    private volatile CountDownLatch healed = new CountDownLatch(0);

    DatabasePartition(int databasePort) throws IOException {
        this.databasePort = databasePort;
        this.server = new ServerSocket(0);
        Thread.ofVirtual().name("database-partition").start(this::accept);
    }

    int port() {
        return server.getLocalPort();
    }

    void cut() {
        healed = new CountDownLatch(1);
    }

    void heal() {
        healed.countDown();
        for (Socket socket : sockets) {
            closeQuietly(socket);
        }
    }

    private boolean isCut() {
        return healed.getCount() > 0;
    }

    private void accept() {
        while (!server.isClosed()) {
            try {
                Socket client = server.accept();
                sockets.add(client);
                if (isCut()) {
                    continue; // held open, never answered, closed at heal
                }
                Socket database = new Socket("localhost", databasePort);
                sockets.add(database);
                Thread.ofVirtual().start(() -> pipe(client, database));
                Thread.ofVirtual().start(() -> pipe(database, client));
            } catch (IOException closed) {
                return;
            }
        }
    }

    private void pipe(Socket from, Socket to) {
        byte[] buffer = new byte[8192];
        try {
            InputStream in = from.getInputStream();
            OutputStream out = to.getOutputStream();
            int read;
            while ((read = in.read(buffer)) >= 0) {
                if (isCut()) {
                    healed.await(); // what was sent across the cut is lost
                    break;
                }
                out.write(buffer, 0, read);
                out.flush();
            }
        } catch (IOException | InterruptedException gone) {
            // the other side or the heal closed it
        } finally {
            closeQuietly(from);
            closeQuietly(to);
        }
    }

    @Override
    public void close() {
        heal();
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    private static void closeQuietly(Socket socket) {
        try {
            socket.close();
        } catch (IOException ignored) {
            // already closed
        }
    }
}
