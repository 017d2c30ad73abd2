package dev.batchgateway.architecture.planted.batch;

import java.sql.Connection;
import org.springframework.stereotype.Component;

/** Breaks the Batch API domain's rules on purpose (JDBC, Spring, identity), but may use the scheduling domain. */
@Component
public class PlantedBatchClass {
    Connection connection;
    dev.batchgateway.architecture.planted.identity.PlantedIdentityClass caller;
    dev.batchgateway.architecture.planted.completion.PlantedDomainClass scheduling;
}
