package dev.batchgateway.architecture.planted;

/** A root-level settings class, as GatewayProperties was, that an adapter reads on purpose: used by ArchitectureTest. */
public record PlantedGatewayProperties(int batchSize) {}
