package dev.batchgateway.clients;

import dev.batchgateway.GatewayApplicationTest;
import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * The gateway of the embedding client tests: the simulated worker's chat model, and beside it a simulated embedding
 * model ({@code GATEWAY_MODELS_0_TASK=embed}) named {@value #MODEL}. Every class with exactly these settings shares one
 * running gateway.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Documented
@Inherited
@GatewayApplicationTest(properties = {"gateway.worker.type=simulated", "gateway.batch.max-wait=1ms",
        "gateway.models[0].name=" + SimulatedEmbeddingGatewayTest.MODEL, "gateway.models[0].type=simulated",
        "gateway.models[0].task=embed"})
@interface SimulatedEmbeddingGatewayTest {

    String MODEL = "simulated-embedding";
}
