package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class UsageJournalConfigurationTest {

    @ParameterizedTest
    @CsvSource({
            "jdbc:postgresql://localhost:5432/postgres, postgresql-localhost-5432-postgres",
            "jdbc:postgresql://127.0.0.1:18102/postgres, postgresql-127.0.0.1-18102-postgres",
            "jdbc:postgresql://user:s3cret@db.internal:5432/gateway?password=hunter2&ssl=true, postgresql-db.internal-5432-gateway",
            "'jdbc:postgresql://db-a:5432,db-b:5432/gateway', postgresql-db-a-5432-db-b-5432-gateway",
            "'', default-database"
    })
    void eachDatabaseHasAFolderOfItsOwnNamedWithoutCredentials(String url, String folder) {
        // When the journal's folder is named after a database URL
        String named = UsageJournalConfiguration.folderOf(url);

        // Then it names host, port and database, never a user, password or parameter, and differs between databases
        assertThat(named).isEqualTo(folder).doesNotContain("s3cret", "hunter2", "user", "/", "@", "?");
    }
}
