package dev.batchgateway.architecture.planted.worker;

/** An adapter that others must not reach, used by ArchitectureTest. */
public class PlantedWorker {}
