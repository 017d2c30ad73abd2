package dev.batchgateway.architecture.planted.usage;

import dev.batchgateway.architecture.planted.PlantedGatewayProperties;

/** An adapter reading the root's settings on purpose (an arrow up to the wiring), used by ArchitectureTest. */
public class PlantedUsageSettingsReader {
    PlantedGatewayProperties properties;
}
