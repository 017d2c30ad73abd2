package dev.batchgateway.architecture.planted.identity;

import java.security.MessageDigest;
import java.sql.Connection;
import org.springframework.stereotype.Component;

/** Breaks the identity rules on purpose (JDBC, Spring, the scheduling domain), but may use java.security. */
@Component
public class PlantedIdentityClass {
    Connection connection;
    MessageDigest digest;
    dev.batchgateway.architecture.planted.completion.PlantedDomainClass scheduling;
}
