package dev.batchgateway;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * {@link GatewayApplicationTest} with the simulated worker and a 1 ms batch wait: the gateway of the API tests that need
 * no worker of their own. Spring's test context cache keys on the settings, so every class with exactly these shares
 * one running gateway instead of starting its own.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Documented
@Inherited
@GatewayApplicationTest(properties = {"gateway.worker.type=simulated", "gateway.batch.max-wait=1ms"})
public @interface SimulatedGatewayTest {}
