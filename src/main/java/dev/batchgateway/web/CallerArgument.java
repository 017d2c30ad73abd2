package dev.batchgateway.web;

import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import jakarta.servlet.http.HttpServletRequest;
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
 * {@code /health}) is open: the signature says which. Declared first, it is resolved before the body is read, and a
 * caller who may not call the route at all is refused here (401, or 403 for a disabled admin API), before the body is
 * read, parsed or judged: a caller without credentials learns nothing about what the body should hold. The
 * endpoints' own checks (which user, which usage) come after.
 */
@Component
class CallerArgument implements HandlerMethodArgumentResolver, WebMvcConfigurer {

    /** Where the operator's API lives: {@code /admin/keys}, {@code /admin/users/…/limits}, {@code /admin/usage}, … */
    private static final String ADMIN_API = "/admin/";

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
        Caller caller = callers.identify(headers != null && headers.length == 1 ? headers[0] : null);
        if (isAdminApi(request)) {
            callers.mayManageKeys(caller); // the admin API is the operator's alone, every route of it
        } else {
            callers.requireKnown(caller);
        }
        return caller;
    }

    private static boolean isAdminApi(NativeWebRequest request) {
        return request.getNativeRequest() instanceof HttpServletRequest http && http.getRequestURI().startsWith(ADMIN_API);
    }
}
