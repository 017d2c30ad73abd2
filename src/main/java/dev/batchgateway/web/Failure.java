package dev.batchgateway.web;

import dev.batchgateway.budget.BudgetUnavailableException;
import dev.batchgateway.budget.LimitExceededException;
import dev.batchgateway.budget.Window;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.DeadlineExceededException;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.identity.AuditUnavailableException;
import dev.batchgateway.identity.KeyStoreUnavailableException;
import dev.batchgateway.identity.ModelNotAllowedException;
import dev.batchgateway.identity.NotAllowedException;
import dev.batchgateway.identity.NotAuthenticatedException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.HttpStatusCode;

/**
 * How a failure is answered, whichever shape renders it ({@link ProblemAdvice}'s problem+json, {@link OpenAiAdvice}'s
 * OpenAI error): the one table of failures to status, {@code Retry-After}, message, OpenAI's {@code type}, {@code
 * param} and {@code code}, and the fields a 429 adds.
 *
 * @param retryAfter null for none
 * @param fields added beside the message (a limit's name, what remains of it, when it resets)
 */
record Failure(HttpStatusCode status, String message, Duration retryAfter, String type, String param, String code,
        Map<String, Object> fields) {

    static final int CLIENT_CLOSED_REQUEST = 499;
    /** The challenge of every 401 (RFC 6750). */
    static final String BEARER_CHALLENGE = "Bearer realm=\"batch-gateway\"";
    static final Duration KEY_STORE_RETRY_AFTER = Duration.ofSeconds(5);
    /**
     * The longest wait worth an automatic retry: the SDKs that cap {@code Retry-After} honour at least a minute of it
     * (openai-node from 7.5, openai-java before 4.25, openai-python); beyond it a retry within an SDK's own back-off
     * cannot succeed, so the answer says not to retry.
     */
    static final Duration LONGEST_RETRY = Duration.ofMinutes(1);
    /** OpenAI's own wait in milliseconds, read before {@code Retry-After} by its SDKs. */
    static final String RETRY_AFTER_MS = "retry-after-ms";
    /** OpenAI's own verdict on a retry, obeyed by its SDKs before the status and {@code Retry-After}. */
    static final String SHOULD_RETRY = "x-should-retry";
    /** Before a limit's name in {@link #limitReason}: the limit is the key's own, not its user's. */
    static final String KEY_LIMIT = "key_";
    private static final Duration WORKER_RETRY_AFTER = Duration.ofSeconds(5);
    private static final String INVALID = "invalid_request_error";
    private static final String SERVER = "server_error";
    private static final String TIMEOUT = "timeout";

    Failure {
        fields = Map.copyOf(fields);
    }

    Failure(HttpStatusCode status, String message, Duration retryAfter, String type, String param, String code) {
        this(status, message, retryAfter, type, param, code, Map.of());
    }

    /** The table: every failure an adapter in web may be answered with; anything else is a 500 that says nothing. */
    static Failure of(Throwable e) {
        return switch (e) {
            case OpenAiError refused -> new Failure(refused.status, refused.getMessage(), null, refused.type, refused.param, refused.code);
            // missing, malformed, unknown or revoked: one answer for all, so it tells nobody which keys exist
            case NotAuthenticatedException missing -> new Failure(HttpStatus.UNAUTHORIZED, missing.getMessage(), null, INVALID, null, "invalid_api_key");
            case ModelNotAllowedException model -> new Failure(HttpStatus.FORBIDDEN, model.getMessage(), null, INVALID, "model", "model_not_allowed");
            case NotAllowedException notAllowed -> new Failure(HttpStatus.FORBIDDEN, notAllowed.getMessage(), null, INVALID, null, "permission_denied");
            case KeyStoreUnavailableException away ->
                    new Failure(HttpStatus.SERVICE_UNAVAILABLE, "the key store is unavailable; try again later", KEY_STORE_RETRY_AFTER, SERVER, null, null);
            // an admin change is not made without its audit entry
            case AuditUnavailableException away -> new Failure(HttpStatus.SERVICE_UNAVAILABLE, away.getMessage(), KEY_STORE_RETRY_AFTER, SERVER, null, null);
            case LimitExceededException over -> overLimit(over);
            case BudgetUnavailableException away -> new Failure(HttpStatus.SERVICE_UNAVAILABLE, away.getMessage(), away.retryAfter(), SERVER, null, null);
            case InvalidRequestException invalid -> new Failure(HttpStatus.BAD_REQUEST, invalid.getMessage(), null, INVALID, null, null);
            // flex beyond its half of the queue: the caller's share, not the gateway's trouble
            case CompletionRejectedException rejected when rejected.tooManyRequests() -> new Failure(
                    HttpStatus.TOO_MANY_REQUESTS, rejected.getMessage(), rejected.retryAfter(), "requests", null, "rate_limit_exceeded");
            case CompletionRejectedException rejected ->
                    new Failure(HttpStatus.SERVICE_UNAVAILABLE, rejected.getMessage(), rejected.retryAfter(), SERVER, null, null);
            case DeadlineExceededException late -> new Failure(HttpStatus.GATEWAY_TIMEOUT, late.getMessage(), null, TIMEOUT, null, null);
            case WorkerException.Unavailable unavailable -> new Failure(HttpStatus.SERVICE_UNAVAILABLE,
                    "the worker is unavailable: " + unavailable.getMessage(), WORKER_RETRY_AFTER, SERVER, null, null);
            case WorkerException.TimedOut timedOut -> new Failure(HttpStatus.GATEWAY_TIMEOUT, timedOut.getMessage(), null, TIMEOUT, null, null);
            case WorkerException.BadAnswer badAnswer ->
                    new Failure(HttpStatus.BAD_GATEWAY, "the worker failed: " + badAnswer.getMessage(), null, SERVER, null, null);
            // the caller's own prompt was refused (e.g. longer than the model's context): theirs to fix
            case WorkerException.Rejected rejected -> new Failure(HttpStatus.BAD_REQUEST,
                    "the worker refused this request: " + rejected.getMessage(), null, INVALID, "prompt", null);
            case WorkerException.Misconfigured misconfigured ->
                    new Failure(HttpStatus.BAD_GATEWAY, "the worker is misconfigured: " + misconfigured.getMessage(), null, SERVER, null, null);
            case UnsupportedCharsetException notUtf8 -> new Failure(HttpStatus.UNSUPPORTED_MEDIA_TYPE, notUtf8.getMessage(), null, INVALID, null, null);
            // nobody reads this answer; the status (nginx's "client closed request") only shows in metrics and logs
            case CallerGoneException gone ->
                    new Failure(HttpStatusCode.valueOf(CLIENT_CLOSED_REQUEST), gone.getMessage(), null, "client_closed_request", null, null);
            default -> unexpected();
        };
    }

    /** A failure nobody foresaw: a 500 that says nothing of it (the log has it). */
    static Failure unexpected() {
        return new Failure(HttpStatus.INTERNAL_SERVER_ERROR, "internal error; the gateway's log has the details", null, SERVER, null, null);
    }

    /**
     * Over a limit: which limit, what remains of it, when it resets, and when to try again. OpenAI's SDKs raise their
     * RateLimitError for it: {@code rate_limit_exceeded} for the per-minute and per-day limits (rate limits, as
     * OpenAI's own RPM and TPD), {@code insufficient_quota} for the monthly budget.
     */
    private static Failure overLimit(LimitExceededException e) {
        boolean quota = e.window() == Window.MONTH;
        Map<String, Object> limit = new LinkedHashMap<>();
        limit.put("limit", e.window().limitName());
        limit.put("limit_scope", e.scope());
        limit.put("limit_value", e.limit());
        limit.put("remaining", e.remaining());
        limit.put("requested", e.requested());
        if (e.reserved() != null) {
            limit.put("reserved", Map.of("prompt_bytes", e.reserved().promptBytes(), "allowance", e.reserved().allowance(),
                    "max_tokens", e.reserved().maxTokens()));
        }
        limit.put("resets_at", e.resetsAt().toString());
        return new Failure(HttpStatus.TOO_MANY_REQUESTS, e.getMessage(), e.retryAfter(),
                quota ? "insufficient_quota" : e.window().countsRequests() ? "requests" : "tokens", null,
                quota ? "insufficient_quota" : "rate_limit_exceeded", limit);
    }

    /**
     * {@code Retry-After} in whole seconds, at least one, when there is one; every 401's challenge. A wait of at most
     * {@link #LONGEST_RETRY} also goes in milliseconds, at least 1000 ({@code retry-after-ms}, which OpenAI's SDKs read
     * first); a longer one (a daily or monthly limit, until its window ends) says {@code x-should-retry: false}, which
     * OpenAI's SDKs obey before anything else: they would otherwise sleep for the whole wait (openai-java from 4.25,
     * openai-node before 7.5) or retry within seconds, uselessly (openai-java before 4.25, openai-node from 7.5,
     * openai-python before 2.52); docs/openai.md cites where.
     */
    HttpHeaders headers() {
        var headers = new HttpHeaders();
        if (retryAfter != null) {
            headers.set(HttpHeaders.RETRY_AFTER, Long.toString(Math.max(1, retryAfter.toSeconds())));
            if (retryable()) {
                // at least a second too, as Retry-After: a full queue's estimate may be shorter, and retries should not storm
                headers.set(RETRY_AFTER_MS, Long.toString(Math.max(1000, retryAfter.toMillis())));
            } else {
                headers.set(SHOULD_RETRY, "false");
            }
        }
        if (status.value() == HttpStatus.UNAUTHORIZED.value()) {
            headers.set(HttpHeaders.WWW_AUTHENTICATE, BEARER_CHALLENGE);
        }
        return headers;
    }

    /**
     * The limit a 429 was over, as {@code gateway.rejections}' reason: the limit's name ({@code tokens_per_day}, …),
     * {@code key_} before it for a key's own limit; null for any other failure.
     */
    String limitReason() {
        if (!(fields.get("limit") instanceof String limit)) {
            return null;
        }
        return "key".equals(fields.get("limit_scope")) ? KEY_LIMIT + limit : limit;
    }

    /** Whether trying again within a minute may succeed: no wait was asked for, or one of at most {@link #LONGEST_RETRY}. */
    boolean retryable() {
        return retryAfter == null || retryAfter.compareTo(LONGEST_RETRY) <= 0;
    }

    /** A failed answer as thrown for the renderers: a cancelled one (the caller has gone) as {@link CallerGoneException}. */
    static RuntimeException thrown(Throwable failure) {
        return failure instanceof CancellationException ? new CallerGoneException()
                : failure instanceof RuntimeException known ? known
                : new CompletionException(failure);
    }

    /** Whether a failed answer ran out of time (a deadline, or the worker's timeout), for a stream's last event. */
    static boolean timedOut(Throwable failure) {
        return failure instanceof DeadlineExceededException || failure instanceof WorkerException.TimedOut;
    }
}
