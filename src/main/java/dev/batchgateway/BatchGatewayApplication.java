package dev.batchgateway;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

@SpringBootApplication
public class BatchGatewayApplication {

    public static void main(String[] args) {
        SpringApplication.run(BatchGatewayApplication.class, args);
    }
}
