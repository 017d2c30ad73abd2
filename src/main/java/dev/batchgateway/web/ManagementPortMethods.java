package dev.batchgateway.web;

import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.boot.actuate.autoconfigure.web.ManagementContextConfiguration;
import org.springframework.boot.actuate.autoconfigure.web.ManagementContextType;
import org.springframework.context.annotation.Bean;
import org.springframework.web.servlet.DispatcherServlet;

/**
 * The management port answers TRACE 405 too, as the API port does ({@code spring.mvc.dispatch-trace-request}, which
 * its own dispatcher does not read): otherwise the servlet echoes the request back with 200.
 */
@ManagementContextConfiguration(value = ManagementContextType.CHILD, proxyBeanMethods = false)
class ManagementPortMethods {

    @Bean
    static BeanPostProcessor traceIsNotEchoed() {
        return new BeanPostProcessor() {
            @Override
            public Object postProcessBeforeInitialization(Object bean, String name) {
                if (bean instanceof DispatcherServlet dispatcher) {
                    dispatcher.setDispatchTraceRequest(true);
                }
                return bean;
            }
        };
    }
}
