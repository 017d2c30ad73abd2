package dev.batchgateway.worker;

import dev.batchgateway.completion.WorkerApi;

/** One inference server reached over HTTP: a member of the {@link WorkerPool}. */
interface RemoteWorker extends WorkerApi, AutoCloseable {

    /** The server's base URL, for logs and health details. */
    String url();

    /** Whether the server answers its health check now. Never throws. */
    boolean healthy();

    @Override
    void close();
}
