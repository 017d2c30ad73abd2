package dev.batchgateway.web;

import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import java.util.List;
import org.springframework.core.MethodParameter;
import org.springframework.http.HttpHeaders;
import org.springframework.stereotype.Component;
import org.springframework.web.bind.support.WebDataBinderFactory;
import org.springframework.web.context.request.NativeWebRequest;
import org.springframework.web.method.support.HandlerMethodArgumentResolver;
import org.springframework.web.method.support.ModelAndViewContainer;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/**
 * A handler parameter of type {@link Caller} is who sent the request, told by {@link Callers} from its
 * {@code Authorization} header. An endpoint that takes a {@code Caller} is guarded, one that does not (only
 * {@code /health}) is open: the signature says which. Declared first, it is resolved before the body is read, so a
 * caller without credentials learns nothing about what the body should hold.
 */
@Component
class CallerArgument implements HandlerMethodArgumentResolver, WebMvcConfigurer {

    private final Callers callers;

    CallerArgument(Callers callers) {
        this.callers = callers;
    }

    @Override
    public void addArgumentResolvers(List<HandlerMethodArgumentResolver> resolvers) {
        resolvers.add(this);
    }

    @Override
    public boolean supportsParameter(MethodParameter parameter) {
        return parameter.getParameterType() == Caller.class;
    }

    @Override
    public Caller resolveArgument(MethodParameter parameter, ModelAndViewContainer mav, NativeWebRequest request,
            WebDataBinderFactory binders) {
        String[] headers = request.getHeaderValues(HttpHeaders.AUTHORIZATION);
        // two Authorization headers are no credentials at all
        return callers.identify(headers != null && headers.length == 1 ? headers[0] : null);
    }
}
