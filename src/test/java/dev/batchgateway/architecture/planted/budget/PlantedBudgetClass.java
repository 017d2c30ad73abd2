package dev.batchgateway.architecture.planted.budget;

import java.sql.Connection;
import org.springframework.stereotype.Component;

/** Breaks the budget rules on purpose (JDBC, Spring, identity), but may use the scheduling domain. */
@Component
public class PlantedBudgetClass {
    Connection connection;
    dev.batchgateway.architecture.planted.identity.PlantedIdentityClass caller;
    dev.batchgateway.architecture.planted.completion.PlantedDomainClass scheduling;
}
