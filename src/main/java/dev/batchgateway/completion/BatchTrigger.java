package dev.batchgateway.completion;

/** Why a batch left the scheduler. */
public enum BatchTrigger {
    /** It held batch-size requests. */
    FULL,
    /** Its first request had waited max-wait. */
    MAX_WAIT,
    /** The gateway is shutting down and sends what it has. */
    SHUTDOWN
}
