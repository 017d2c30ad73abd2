package dev.batchgateway.worker;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A vLLM-like worker on a plain socket, for what HTTP server libraries will not do on purpose. It reads each POST whole
 * and records its body ({@link #posts}), then meets the {@link #fate} the test chose: it answers as vLLM does (each
 * prompt upper-cased, one prompt and one completion token), closes or resets the connection with the batch in hand (a
 * worker killed mid-generation), or answers without end. GETs (health checks) are answered 200, {@code /v1/models}
 * listing the served model.
 *
 * <p>With an {@link #idleClose}, a kept-alive connection that gets no request within that time is closed by this
 * server, as uvicorn does after 5 s: it sends its FIN and then listens on, so that it can tell what the client did with
 * the closed connection, dropped it ({@link #droppedByClient}) or wrote a request to it anyway ({@link #staleWrites}).
 */
public final class RawWorker implements AutoCloseable {

    /** What happens to a POST once this worker has read it whole. */
    public enum Fate {
        /** Answered as vLLM answers a list of prompts with {@code return_token_ids}. */
        ANSWER,
        /** The connection is closed, no byte answered: a worker that died with the batch. */
        CLOSE,
        /** The connection is reset (RST), no byte answered. */
        RESET,
        /** 200 and a JSON answer that never ends (chunked). */
        ENDLESS_BODY,
        /** 200 and a stream of server-sent events that never ends (chunked). */
        ENDLESS_STREAM,
        /** 200 with a {@code Content-Length} of a terabyte, and then nothing. */
        TERABYTE_DECLARED
    }

    private static final JsonMapper JSON = JsonMapper.builder().build();

    public volatile Fate fate = Fate.ANSWER;
    /** How long a kept-alive connection may sit idle before this worker closes it; null keeps it open. */
    public volatile Duration idleClose;
    /** The bodies of the POSTs read whole, in arrival order. */
    public final List<String> posts = new CopyOnWriteArrayList<>();
    public final AtomicInteger connections = new AtomicInteger();
    /** Requests that arrived on a connection after this worker had closed it as idle. */
    public final AtomicInteger staleWrites = new AtomicInteger();
    /** Released each time the client drops a connection this worker closed as idle. */
    public final Semaphore droppedByClient = new Semaphore(0);
    /** Bytes of endless answers written so far. */
    public final AtomicLong endlessBytes = new AtomicLong();
    /** Counted down each time the client stopped taking an endless answer (its writes failed). */
    public final CountDownLatch endlessCut = new CountDownLatch(1);

    private final String model;
    private final ServerSocket socket;

    public RawWorker(String model) {
        this.model = model;
        try {
            socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Thread.ofVirtual().name("raw-worker").start(this::accept);
    }

    public String url() {
        return "http://127.0.0.1:" + socket.getLocalPort();
    }

    /**
     * Every prompt of every POST read whole, in arrival order; a health check's chat template probes ({@code POST
     * /tokenize} of messages) carry none.
     */
    public List<String> prompts() {
        List<String> prompts = new ArrayList<>();
        for (String post : posts) {
            JsonNode prompt = JSON.readTree(post).get("prompt");
            if (prompt == null) {
                continue;
            }
            if (prompt.isArray()) {
                prompt.forEach(one -> prompts.add(one.asString()));
            } else {
                prompts.add(prompt.asString());
            }
        }
        return prompts;
    }

    private void accept() {
        while (!socket.isClosed()) {
            try {
                Socket connection = socket.accept();
                connections.incrementAndGet();
                Thread.ofVirtual().start(() -> serve(connection));
            } catch (IOException closed) {
                return;
            }
        }
    }

    private void serve(Socket connection) {
        try (connection; var in = new BufferedInputStream(connection.getInputStream())) {
            OutputStream out = connection.getOutputStream();
            while (true) {
                Request request = Request.read(in);
                if (request == null) {
                    return;
                }
                if (!request.method.equals("POST")) {
                    answer(out, "application/json", request.path.equals("/v1/models")
                            ? "{\"object\":\"list\",\"data\":[{\"id\":\"" + model + "\",\"object\":\"model\"}]}" : "{}");
                    continue;
                }
                posts.add(request.body);
                switch (fate) {
                    case ANSWER -> answer(out, "application/json", completion(request.body));
                    case CLOSE -> {
                        return;
                    }
                    case RESET -> {
                        connection.setSoLinger(true, 0);
                        return;
                    }
                    case ENDLESS_BODY -> endless(out, "application/json", "{\"choices\":[{\"index\":0,\"text\":\"", "a".repeat(8192));
                    case ENDLESS_STREAM -> endless(out, "text/event-stream", "",
                            "data: {\"choices\":[{\"index\":0,\"text\":\"a\",\"finish_reason\":null}]}\n\n".repeat(64));
                    case TERABYTE_DECLARED -> {
                        out.write(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1099511627776\r\n\r\n")
                                .getBytes(StandardCharsets.US_ASCII));
                        out.flush();
                        in.transferTo(OutputStream.nullOutputStream()); // until the client closes
                        return;
                    }
                }
                if (idleClose != null && closedWhileIdle(connection, in)) {
                    return;
                }
            }
        } catch (IOException e) {
            // the client closed or reset the connection: the test reads the outcome on its side
        }
    }

    /**
     * Waits for the next request up to {@link #idleClose}; when none comes, sends FIN and notes what the client does with
     * the connection then. True when the connection is done with.
     */
    private boolean closedWhileIdle(Socket connection, BufferedInputStream in) throws IOException {
        connection.setSoTimeout((int) idleClose.toMillis());
        in.mark(1);
        try {
            if (in.read() < 0) {
                return true;
            }
            in.reset();
            connection.setSoTimeout(0);
            return false; // a request came in time: served as usual
        } catch (SocketTimeoutException idle) {
            connection.setSoTimeout(0);
        }
        connection.shutdownOutput();
        if (in.read() < 0) {
            droppedByClient.release();
        } else {
            staleWrites.incrementAndGet();
        }
        return true;
    }

    private void endless(OutputStream out, String contentType, String start, String piece) throws IOException {
        out.write(("HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\nTransfer-Encoding: chunked\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        byte[] chunk = chunk(piece);
        try {
            if (!start.isEmpty()) {
                out.write(chunk(start));
            }
            while (true) {
                out.write(chunk);
                endlessBytes.addAndGet(chunk.length);
            }
        } catch (IOException cut) {
            endlessCut.countDown();
            throw cut;
        }
    }

    private static byte[] chunk(String piece) {
        byte[] data = piece.getBytes(StandardCharsets.UTF_8);
        byte[] head = (Integer.toHexString(data.length) + "\r\n").getBytes(StandardCharsets.US_ASCII);
        byte[] chunk = new byte[head.length + data.length + 2];
        System.arraycopy(head, 0, chunk, 0, head.length);
        System.arraycopy(data, 0, chunk, head.length, data.length);
        chunk[chunk.length - 2] = '\r';
        chunk[chunk.length - 1] = '\n';
        return chunk;
    }

    private static void answer(OutputStream out, String contentType, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        out.write(("HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\nContent-Length: " + bytes.length + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        out.write(bytes);
        out.flush();
    }

    /** vLLM's answer to a list of prompts with {@code return_token_ids}: each prompt upper-cased, 1 + 1 tokens. */
    private String completion(String request) {
        JsonNode prompt = JSON.readTree(request).get("prompt");
        List<String> prompts = new ArrayList<>();
        if (prompt.isArray()) {
            prompt.forEach(one -> prompts.add(one.asString()));
        } else {
            prompts.add(prompt.asString());
        }
        ObjectNode answer = JSON.createObjectNode().put("id", "cmpl-raw").put("object", "text_completion").put("model", model);
        ArrayNode choices = answer.putArray("choices");
        for (int i = 0; i < prompts.size(); i++) {
            ObjectNode choice = choices.addObject().put("index", i).put("text", prompts.get(i).toUpperCase(Locale.ROOT))
                    .put("finish_reason", "stop");
            choice.putArray("prompt_token_ids").add(1);
            choice.putArray("token_ids").add(2);
        }
        answer.putObject("usage").put("prompt_tokens", prompts.size()).put("completion_tokens", prompts.size())
                .put("total_tokens", 2 * prompts.size());
        return JSON.writeValueAsString(answer);
    }

    /** One HTTP/1.1 request with a Content-Length body (the JDK client's way). */
    private record Request(String method, String path, String body) {

        /** The next request, or null when the connection ended first. */
        static Request read(InputStream in) throws IOException {
            StringBuilder head = new StringBuilder();
            while (!head.toString().endsWith("\r\n\r\n")) {
                int c = in.read();
                if (c < 0) {
                    return null;
                }
                head.append((char) c);
            }
            String[] lines = head.toString().split("\r\n");
            String[] requestLine = lines[0].split(" ");
            int length = 0;
            for (String line : lines) {
                if (line.toLowerCase(Locale.ROOT).startsWith("content-length:")) {
                    length = Integer.parseInt(line.substring(line.indexOf(':') + 1).strip());
                }
            }
            byte[] body = in.readNBytes(length);
            if (body.length < length) {
                return null;
            }
            return new Request(requestLine[0], requestLine[1], new String(body, StandardCharsets.UTF_8));
        }
    }

    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
