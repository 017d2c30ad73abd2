package dev.batchgateway.web;

import dev.batchgateway.batch.BatchApiException;
import dev.batchgateway.batch.Batches;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import java.util.UUID;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * OpenAI's Batch API: {@code POST /v1/batches}, {@code GET /v1/batches/{id}}, {@code GET /v1/batches}, {@code POST
 * /v1/batches/{id}/cancel}. A batch is its key's user's: another user gets 404. The instances' runners do the work.
 */
@RestController
class BatchesController {

    /** The most metadata pairs, as OpenAI's. */
    private static final int METADATA_PAIRS = 16;

    private final Batches batches;
    private final Callers callers;
    private final JsonMapper json = JsonMapper.builder().build();

    BatchesController(Batches batches, Callers callers) {
        this.batches = batches;
        this.callers = callers;
    }

    @PostMapping(path = "/v1/batches", produces = MediaType.APPLICATION_JSON_VALUE)
    BatchApiObjects.BatchObject create(Caller who, @RequestBody JsonNode body) {
        long user = BatchApiObjects.owner(callers, who);
        if (body == null || !body.isObject()) {
            throw new BatchApiException.Invalid(null, "The request body must be a JSON object.");
        }
        return BatchApiObjects.BatchObject.of(batches.create(user, keyOf(who), string(body, "input_file_id"), string(body, "endpoint"),
                string(body, "completion_window"), metadata(body.get("metadata"))));
    }

    @GetMapping(path = "/v1/batches/{id}", produces = MediaType.APPLICATION_JSON_VALUE)
    BatchApiObjects.BatchObject batch(Caller who, @PathVariable String id) {
        return BatchApiObjects.BatchObject.of(batches.find(BatchApiObjects.owner(callers, who), id));
    }

    @GetMapping(path = "/v1/batches", produces = MediaType.APPLICATION_JSON_VALUE)
    BatchApiObjects.ListPage<BatchApiObjects.BatchObject> list(Caller who, @RequestParam(required = false) String limit,
            @RequestParam(required = false) String after) {
        long user = BatchApiObjects.owner(callers, who);
        int most = BatchApiObjects.limit(limit, 20, 100);
        return BatchApiObjects.ListPage.of(batches.list(user, most + 1, after), most, BatchApiObjects.BatchObject::of,
                BatchApiObjects.BatchObject::id);
    }

    @PostMapping(path = "/v1/batches/{id}/cancel", produces = MediaType.APPLICATION_JSON_VALUE)
    BatchApiObjects.BatchObject cancel(Caller who, @PathVariable String id) {
        return BatchApiObjects.BatchObject.of(batches.cancel(BatchApiObjects.owner(callers, who), id));
    }

    /** The key the batch is created with, whose requests its lines are (the owner is a key's user: there is one). */
    private static UUID keyOf(Caller who) {
        return who instanceof Caller.User key ? key.keyId() : null;
    }

    private static String string(JsonNode body, String field) {
        JsonNode value = body.get(field);
        if (value == null || value.isNull()) {
            return null;
        }
        if (!value.isString()) {
            throw new BatchApiException.Invalid(field, field + " must be a string");
        }
        return value.stringValue();
    }

    /** OpenAI's metadata: up to 16 pairs of strings (keys up to 64 characters, values up to 512); null for none. */
    private String metadata(JsonNode metadata) {
        if (metadata == null || metadata.isNull()) {
            return null;
        }
        if (!metadata.isObject() || metadata.size() > METADATA_PAIRS) {
            throw new BatchApiException.Invalid("metadata", "metadata must be an object of up to " + METADATA_PAIRS + " string pairs");
        }
        for (var pair : metadata.properties()) {
            if (pair.getKey().length() > 64 || !pair.getValue().isString() || pair.getValue().stringValue().length() > 512) {
                throw new BatchApiException.Invalid("metadata",
                        "metadata keys are strings of up to 64 characters, values strings of up to 512");
            }
        }
        return json.writeValueAsString(metadata);
    }
}
