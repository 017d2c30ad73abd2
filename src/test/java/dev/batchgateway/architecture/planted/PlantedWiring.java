package dev.batchgateway.architecture.planted;

import dev.batchgateway.architecture.planted.worker.PlantedWorker;

/** The root wiring importing a package, which is the allowed direction: used by ArchitectureTest. */
public class PlantedWiring {
    PlantedWorker worker = new PlantedWorker();
}
