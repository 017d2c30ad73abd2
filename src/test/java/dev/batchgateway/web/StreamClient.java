package dev.batchgateway.web;

import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;
import org.springframework.mock.web.MockAsyncContext;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;

/**
 * A client's connection as the container gives it to a non-blocking writer: it takes every write at once, the client
 * seeing it when it is flushed or the answer ends (Jetty gathers small writes until then); or, when the client does not
 * read as it comes, one write, after which it is not ready until the client {@link #reads()} (the container then calls
 * {@code onWritePossible}, if the writer was told it was not ready).
 */
final class StreamClient extends ServletOutputStream {

    private final Object lock = new Object();
    private final boolean readsAsItComes;
    private final StringBuilder read = new StringBuilder();
    private final StringBuilder unread = new StringBuilder();
    private final StringBuilder unflushed = new StringBuilder();
    private final AtomicInteger using = new AtomicInteger();
    final AtomicInteger completions = new AtomicInteger();
    final MockHttpServletResponse response = new MockHttpServletResponse() {
        @Override
        public ServletOutputStream getOutputStream() {
            return StreamClient.this;
        }
    };
    MockAsyncContext async;
    volatile boolean overlapped;
    volatile boolean misused;
    volatile IOException failure;
    private volatile boolean readsAtOnce;
    WriteListener listener;
    private boolean ready = true;
    private boolean owed;

    StreamClient(boolean readsAsItComes) {
        this.readsAsItComes = readsAsItComes;
    }

    /** The async context of the stream's own cycle on this connection, counting the answer's completions. */
    MockAsyncContext connection() {
        async = new MockAsyncContext(new MockHttpServletRequest(), response) {
            @Override
            public void complete() {
                synchronized (lock) {
                    read.append(unflushed); // the end of the answer sends what was gathered
                    unflushed.setLength(0);
                }
                completions.incrementAndGet();
                super.complete();
            }
        };
        return async;
    }

    String read() {
        synchronized (lock) {
            return read.toString();
        }
    }

    /** Reads what was written; the container tells the writer it may write again. */
    void reads() throws IOException {
        WriteListener told;
        synchronized (lock) {
            read.append(unread);
            unread.setLength(0);
            ready = true;
            told = owed ? listener : null;
            owed = false;
        }
        if (told != null) {
            told.onWritePossible();
        }
    }

    /**
     * From now on the client reads as soon as the writer is told the connection is full, before the writer has let go
     * of it: the container's call that it may write again comes while the writer still writes.
     */
    void readsWhileTheWriterIsStillWriting() {
        readsAtOnce = true;
    }

    @Override
    public boolean isReady() {
        boolean readyNow;
        enter();
        try {
            synchronized (lock) {
                owed |= !ready;
                readyNow = ready;
            }
        } finally {
            exit();
        }
        if (!readyNow && readsAtOnce) {
            try {
                reads();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return readyNow;
    }

    @Override
    public void setWriteListener(WriteListener writeListener) {
        synchronized (lock) {
            listener = writeListener;
        }
        try {
            writeListener.onWritePossible(); // the container's first call: the connection can be written to
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] bytes, int offset, int length) throws IOException {
        enter();
        try {
            synchronized (lock) {
                misused |= !ready;
                if (failure != null) {
                    throw failure;
                }
                String text = new String(bytes, offset, length, StandardCharsets.UTF_8);
                if (readsAsItComes) {
                    unflushed.append(text);
                } else {
                    unread.append(text);
                    ready = false;
                }
            }
        } finally {
            exit();
        }
    }

    @Override
    public void flush() throws IOException {
        enter();
        try {
            synchronized (lock) {
                misused |= !ready;
                if (failure != null) {
                    throw failure;
                }
                read.append(unflushed);
                unflushed.setLength(0);
            }
        } finally {
            exit();
        }
    }

    private void enter() {
        overlapped |= using.incrementAndGet() > 1;
    }

    private void exit() {
        using.decrementAndGet();
    }
}
