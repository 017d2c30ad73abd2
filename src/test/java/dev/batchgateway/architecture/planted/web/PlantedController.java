package dev.batchgateway.architecture.planted.web;

import dev.batchgateway.architecture.planted.worker.PlantedWorker;

/** An adapter calling another adapter on purpose, used by ArchitectureTest. */
public class PlantedController {
    PlantedWorker worker = new PlantedWorker();
}
