package dev.batchgateway;

/**
 * Starts the test PostgreSQL ({@link TestDatabase}) on its own and prints its JDBC URL, for the benchmark script;
 * runs until killed.
 */
public final class StandaloneTestDatabase {

    public static void main(String[] args) throws InterruptedException {
        var database = TestDatabase.get();
        System.out.println("JDBC_URL=" + database.url());
        System.out.println("JDBC_USERNAME=" + database.username());
        System.out.println("JDBC_PASSWORD=" + database.password());
        System.out.flush();
        Thread.currentThread().join();
    }
}
