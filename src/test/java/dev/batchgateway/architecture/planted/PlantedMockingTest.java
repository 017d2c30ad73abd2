package dev.batchgateway.architecture.planted;

import dev.batchgateway.architecture.planted.mocking.PlantedMockLibrary;
import dev.batchgateway.architecture.planted.worker.PlantedWorker;

/** A test class that reaches for a mocking library, used by ArchitectureTest (it has no tests to run). */
class PlantedMockingTest {

    PlantedWorker worker = PlantedMockLibrary.mock(PlantedWorker.class);
}
