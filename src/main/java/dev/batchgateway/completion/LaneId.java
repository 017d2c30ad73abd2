package dev.batchgateway.completion;

import java.util.Objects;

/** A lane of the scheduler: the requests of one model in one service tier, which form and leave in batches together. */
public record LaneId(String model, ServiceTier tier) {

    public LaneId {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(tier, "tier");
    }
}
