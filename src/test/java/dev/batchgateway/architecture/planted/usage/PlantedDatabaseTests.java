package dev.batchgateway.architecture.planted.usage;

import dev.batchgateway.SimulatedGatewayTest;
import dev.batchgateway.TestDatabase;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.springframework.boot.test.context.SpringBootTest;

// Test classes for DatabaseTagTest to judge, abstract so that JUnit never runs them.

/** Reaches the database and is not tagged. */
abstract class PlantedUntaggedDatabaseTest {
    @Test
    void reads() {
        TestDatabase.get();
    }
}

/** Starts a whole gateway and is not tagged. */
@SpringBootTest
abstract class PlantedUntaggedGatewayTest {
    @Test
    void calls() {}
}

/** Starts a whole gateway, tagged through its composed annotation. */
@SimulatedGatewayTest
abstract class PlantedTaggedGatewayTest {
    @Test
    void calls() {}
}

/** Reaches the database through a helper of its own. */
abstract class PlantedUntaggedSchemaTest {
    @Test
    void migrates() {
        new PlantedSchema().migrate();
    }
}

/** Reaches the database and says so. */
@Tag(TestDatabase.TAG)
abstract class PlantedTaggedDatabaseTest {
    @Test
    void reads() {
        TestDatabase.get();
    }
}

/** Never reaches the database. */
abstract class PlantedUnitTest {
    @Test
    void adds() {}
}

final class PlantedSchema {
    void migrate() {
        TestDatabase.get();
    }
}
