package dev.batchgateway.worker;

import java.io.EOFException;
import java.io.IOException;
import java.net.Authenticator;
import java.net.CookieHandler;
import java.net.ProxySelector;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;

/**
 * The JDK client, but the first {@code closings} calls meet a connection that the worker closes, as the JDK reports a
 * kept-alive connection whose close arrived with the call (measured: {@code IOException "HTTP/1.1 header parser received
 * no bytes"} caused by an {@code EOFException}). With {@code bodyTaken} false the close arrives before the client took
 * the call's body, as when the close is seen between taking the connection from the pool and writing the body; true,
 * after it took the body, as when the close crosses the call on the wire. Counts the calls it was given.
 */
final class ConnectionClosingClient extends HttpClient {

    final AtomicInteger calls = new AtomicInteger();
    private final HttpClient jdk;
    private final AtomicInteger closings;
    private final boolean bodyTaken;

    ConnectionClosingClient(HttpClient jdk, int closings, boolean bodyTaken) {
        this.jdk = jdk;
        this.closings = new AtomicInteger(closings);
        this.bodyTaken = bodyTaken;
    }

    @Override
    public <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler) throws IOException, InterruptedException {
        calls.incrementAndGet();
        if (closings.getAndDecrement() <= 0) {
            return jdk.send(request, handler);
        }
        if (bodyTaken) {
            request.bodyPublisher().orElseThrow().subscribe(new Flow.Subscriber<ByteBuffer>() {
                @Override
                public void onSubscribe(Flow.Subscription subscription) {
                    subscription.request(Long.MAX_VALUE);
                }

                @Override
                public void onNext(ByteBuffer item) {}

                @Override
                public void onError(Throwable throwable) {}

                @Override
                public void onComplete() {}
            });
        }
        var eof = new EOFException("EOF reached while reading");
        throw new IOException("HTTP/1.1 header parser received no bytes", new IOException("HTTP/1.1 header parser received no bytes", eof));
    }

    @Override
    public <T> CompletableFuture<HttpResponse<T>> sendAsync(HttpRequest request, HttpResponse.BodyHandler<T> handler) {
        throw new UnsupportedOperationException("the worker endpoint sends synchronously");
    }

    @Override
    public <T> CompletableFuture<HttpResponse<T>> sendAsync(
            HttpRequest request, HttpResponse.BodyHandler<T> handler, HttpResponse.PushPromiseHandler<T> push) {
        throw new UnsupportedOperationException("the worker endpoint sends synchronously");
    }

    @Override
    public Optional<CookieHandler> cookieHandler() {
        return jdk.cookieHandler();
    }

    @Override
    public Optional<Duration> connectTimeout() {
        return jdk.connectTimeout();
    }

    @Override
    public Redirect followRedirects() {
        return jdk.followRedirects();
    }

    @Override
    public Optional<ProxySelector> proxy() {
        return jdk.proxy();
    }

    @Override
    public SSLContext sslContext() {
        return jdk.sslContext();
    }

    @Override
    public SSLParameters sslParameters() {
        return jdk.sslParameters();
    }

    @Override
    public Optional<Authenticator> authenticator() {
        return jdk.authenticator();
    }

    @Override
    public Version version() {
        return jdk.version();
    }

    @Override
    public Optional<Executor> executor() {
        return jdk.executor();
    }

    @Override
    public void shutdownNow() {
        jdk.shutdownNow();
    }
}
