package dev.batchgateway.architecture.planted.mocking;

/** Stands in for a mocking library's entry point, used by ArchitectureTest. */
public final class PlantedMockLibrary {

    private PlantedMockLibrary() {}

    public static <T> T mock(Class<T> type) {
        throw new UnsupportedOperationException("a planted stand-in: never called");
    }
}
