package dev.batchgateway.architecture.planted.http;

import dev.batchgateway.architecture.planted.web.PlantedController;

/** Shared request parsing that reaches into an adapter on purpose, used by ArchitectureTest. */
public class PlantedRequestValue {
    PlantedController controller;
}
