package dev.batchgateway.web;

import dev.batchgateway.GatewayProperties;
import org.springframework.stereotype.Component;
import org.springframework.web.servlet.config.annotation.AsyncSupportConfigurer;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/**
 * A streamed answer is written by an async task of its own ({@link EventStream}); its time limit would otherwise be
 * the servlet container's default (Tomcat: 30 s), which cuts long generations short. It gets the gateway's request
 * timeout plus a margin instead, the same safety net the waiting requests have.
 */
@Component
class StreamTimeout implements WebMvcConfigurer {

    private final long timeoutMillis;

    StreamTimeout(GatewayProperties properties) {
        this.timeoutMillis = properties.requestTimeout().plus(CompletionController.ASYNC_SAFETY_MARGIN).toMillis();
    }

    @Override
    public void configureAsyncSupport(AsyncSupportConfigurer configurer) {
        configurer.setDefaultTimeout(timeoutMillis);
    }
}
