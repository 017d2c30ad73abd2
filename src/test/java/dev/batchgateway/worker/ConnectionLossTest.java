package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A lost connection against the rule that a batch is never generated twice: only a call that provably never left is
 * tried again (a refused connection; a kept-alive connection the worker closed while it sat idle, or that ended before
 * the client took the call's body), and a worker that dies with the batch in hand is a broken-off answer (502) that it
 * received once.
 */
class ConnectionLossTest {

    private static final Duration CONNECT = Duration.ofSeconds(2);
    private static final Duration TIMEOUT = Duration.ofSeconds(20);

    private static OpenAiWorker vllm(String name, String url) {
        return new OpenAiWorker(new WorkerEndpoint(name, url, null, CONNECT, TIMEOUT, WorkerEndpoint.DEFAULT_MAX_ANSWER_BYTES), "m");
    }

    private static Batch batch(long id, String... prompts) {
        return new Batch(id, new GenerationParameters(4), List.of(prompts));
    }

    @Test
    void theJdkClientIsSetUpAsTheGatewaySetsItUpAndNeverSendsAPostAgainByItself() {
        // the launcher gives java the keep-alive on its command line, the build the same to the test JVM (see the pom);
        // the JDK's re-send of any method whose connection ends before an answer must stay off in both
        assertThat(System.getProperty(WorkerConnections.KEEP_ALIVE)).isEqualTo("4");
        assertThat(System.getProperty("jdk.httpclient.enableAllMethodRetry")).isNull();
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = RawWorker.Fate.class, names = {"CLOSE", "RESET"})
    void aWorkerThatDiesWithTheBatchInHandIsABrokenOffAnswerAndGotEachPromptOnce(RawWorker.Fate death) {
        // Given a worker that reads a batch whole and then closes or resets the connection without a byte of answer
        try (var raw = new RawWorker("m"); var worker = vllm("worker 1", raw.url())) {
            raw.fate = death;

            // When a batch is sent, then it is a broken-off answer (502 for its callers), naming the worker, not its URL
            assertThatThrownBy(() -> worker.complete(batch(1, "a", "b", "c")))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessage("worker 1 broke off its answer to /v1/completions");

            // And the worker got each prompt exactly once, on one connection: the batch was not sent again
            assertThat(raw.prompts()).containsExactly("a", "b", "c");
            assertThat(raw.connections.get()).isEqualTo(1);
        }
    }

    @Test
    void aWorkerThatDiesWithTheBatchInHandOnAKeptAliveConnectionGotItOnceToo() {
        // Given a worker that answered a batch, and dies with the next, sent on the kept-alive connection
        try (var raw = new RawWorker("m"); var worker = vllm("worker 1", raw.url())) {
            assertThat(worker.complete(batch(1, "a"))).singleElement().isInstanceOf(WorkerOutcome.Generated.class);
            raw.fate = RawWorker.Fate.CLOSE;

            // When the next batch is sent, then it is a broken-off answer, sent once (this is where the JDK's
            // enableAllMethodRetry sent it a second time, on a fresh connection)
            assertThatThrownBy(() -> worker.complete(batch(2, "b", "c")))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessageContaining("broke off");
            assertThat(raw.prompts()).containsExactly("a", "b", "c");
            assertThat(raw.connections.get()).isEqualTo(1);
        }
    }

    @Test
    void batchesOneAfterAnotherAreAllSentOnTheOneKeptAliveConnection() {
        // Given a worker that keeps its connections open
        try (var raw = new RawWorker("m"); var worker = vllm("worker 1", raw.url())) {
            // When 100 batches are sent one after another
            for (int id = 1; id <= 100; id++) {
                assertThat(worker.complete(batch(id, "a", "b"))).hasSize(2);
            }

            // Then the client kept the first connection for all of them (an answer closed before the client saw its
            // end loses its connection: 90 of 300 batches went on a fresh one)
            assertThat(raw.connections.get()).isEqualTo(1);
        }
    }

    @Test
    void aKeptAliveConnectionTheWorkerClosedWhileIdleIsNotWrittenToAndTheNextBatchGoesOnAFreshOne() throws Exception {
        // Given a worker that closes a connection idle for 100 ms (uvicorn does after 5 s, a shorter time than the
        // gateway's own keep-alive, here 4 s, so the worker closes first)
        try (var raw = new RawWorker("m"); var worker = vllm("worker 1", raw.url())) {
            raw.idleClose = Duration.ofMillis(100);
            assertThat(worker.complete(batch(1, "a"))).hasSize(1);

            // When the worker has closed the connection, and the client has dropped it from its pool
            assertThat(raw.droppedByClient.tryAcquire(10, TimeUnit.SECONDS)).as("the client dropped the closed connection").isTrue();

            // Then the next batch goes on a fresh connection and is answered, each prompt sent once
            assertThat(worker.complete(batch(2, "b", "c"))).hasSize(2).allMatch(WorkerOutcome.Generated.class::isInstance);
            assertThat(raw.prompts()).containsExactly("a", "b", "c");
            assertThat(raw.connections.get()).isEqualTo(2);
            assertThat(raw.staleWrites.get()).isZero();
        }
    }

    @Test
    void aCallWhoseConnectionClosedBeforeItsBodyWasTakenIsSentOnceMoreAndAnsweredOnce() {
        // Given a worker whose kept-alive connection is seen closed before the client took the batch's body (the JDK
        // reports it as it reports any close before an answer: this client plays it, then hands over to the JDK's)
        var client = new ConnectionClosingClient(WorkerEndpoint.client(CONNECT), 1, false); // the worker shuts it down
        try (var raw = new RawWorker("m");
                var worker = new OpenAiWorker(new WorkerEndpoint("worker 1", raw.url(), null, TIMEOUT, 1 << 20, client), "m")) {
            // When a batch is sent, then it is sent once more and answered, and the worker got each prompt once
            assertThat(worker.complete(batch(1, "a", "b"))).hasSize(2).allMatch(WorkerOutcome.Generated.class::isInstance);
            assertThat(client.calls.get()).isEqualTo(2);
            assertThat(raw.prompts()).containsExactly("a", "b");
        }
    }

    @Test
    void aCallWhoseConnectionClosedAfterItsBodyWasTakenIsABrokenOffAnswerNotSentAgain() {
        // Given the same close, but after the client took the body (it may have reached the worker)
        var client = new ConnectionClosingClient(WorkerEndpoint.client(CONNECT), 1, true); // the worker shuts it down
        try (var raw = new RawWorker("m");
                var worker = new OpenAiWorker(new WorkerEndpoint("worker 1", raw.url(), null, TIMEOUT, 1 << 20, client), "m")) {
            // When a batch is sent, then it is a broken-off answer (502), sent once
            assertThatThrownBy(() -> worker.complete(batch(1, "a", "b")))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessage("worker 1 broke off its answer to /v1/completions");
            assertThat(client.calls.get()).isEqualTo(1);
        }
    }

    @Test
    void aCallWhoseConnectionClosesBeforeItsBodyTwiceIsUnavailable() {
        // Given a worker that closes the connection before the body, again on the fresh connection
        var client = new ConnectionClosingClient(WorkerEndpoint.client(CONNECT), 2, false); // the worker shuts it down
        try (var raw = new RawWorker("m");
                var worker = new OpenAiWorker(new WorkerEndpoint("worker 1", raw.url(), null, TIMEOUT, 1 << 20, client), "m")) {
            // When a batch is sent, then it is unavailable (nothing reached the worker: 503, or the next worker), after
            // two tries, not more
            assertThatThrownBy(() -> worker.complete(batch(1, "a")))
                    .isInstanceOf(WorkerException.Unavailable.class)
                    .hasMessage("worker 1 closed the connection before the call to /v1/completions was sent, twice");
            assertThat(client.calls.get()).isEqualTo(2);
            assertThat(raw.posts).isEmpty();
        }
    }

    @Test
    void aRefusedConnectionIsUnavailableNamingTheWorkerAndThePoolSendsTheBatchToTheNext() throws IOException {
        // Given a port nobody listens on, as worker 1 of a pool, and a worker that answers, as worker 2
        String refusing = "http://127.0.0.1:" + freePort();
        try (var alone = vllm("worker 1", refusing)) {
            // When a batch is sent to the refusing worker alone, then it is unavailable (503), naming it, not its URL
            assertThatThrownBy(() -> alone.complete(batch(1, "a")))
                    .isInstanceOf(WorkerException.Unavailable.class)
                    .hasMessage("could not connect to worker 1");
        }
        try (var raw = new RawWorker("m");
                var pool = new WorkerPool(List.of(vllm("worker 1", refusing), vllm("worker 2", raw.url())), 4,
                        Duration.ofHours(1), Duration.ofHours(1), Ticker.system())) {
            // When two batches come (the rotation sends one of them to worker 1 first)
            assertThat(pool.complete(batch(2, "b"))).hasSize(1);
            assertThat(pool.complete(batch(3, "c"))).hasSize(1);

            // Then both are answered by worker 2, each prompt once, and worker 1 is out of rotation
            assertThat(raw.prompts()).containsExactlyInAnyOrder("b", "c");
            assertThat(pool.inRotation(refusing)).isFalse();
        }
    }

    private static int freePort() throws IOException {
        try (var socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
