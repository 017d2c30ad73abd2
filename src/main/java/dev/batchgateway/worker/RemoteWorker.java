package dev.batchgateway.worker;

import dev.batchgateway.completion.ModelContext;
import dev.batchgateway.completion.WorkerApi;

/** One inference server reached over HTTP: a member of the {@link WorkerPool}. */
interface RemoteWorker extends WorkerApi, AutoCloseable {

    /** The server's base URL, for logs and health details. */
    String url();

    /**
     * Whether the server answers now <em>and</em> serves the configured model with the configured key, within about a
     * second. Never throws.
     */
    WorkerHealth health();

    /** What the server said of the model's context at its last {@link #health()} check; unreported until one answers. */
    default ModelContext context() {
        return ModelContext.UNREPORTED;
    }

    @Override
    void close();
}
