package dev.batchgateway.architecture.planted.completion;

import java.sql.Connection;
import java.net.http.HttpClient;
import org.springframework.stereotype.Component;

/** Breaks every domain rule on purpose, so that ArchitectureTest can show its rules catch it. */
@Component
public class PlantedDomainClass {
    Connection connection;
    HttpClient client;
    dev.batchgateway.architecture.planted.worker.PlantedWorker worker;
}
