package dev.batchgateway.web;

import dev.batchgateway.batch.BatchApiException;
import dev.batchgateway.batch.Batches;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** {@code GET /admin/batches}: every user's batches, newest first, for the operator (the admin token). */
@RestController
class AdminBatchesController {

    private final Batches batches;
    private final Callers callers;

    AdminBatchesController(Batches batches, Callers callers) {
        this.batches = batches;
        this.callers = callers;
    }

    @GetMapping(path = "/admin/batches", produces = MediaType.APPLICATION_JSON_VALUE)
    BatchApiObjects.ListPage<BatchApiObjects.BatchObject> list(Caller who, @RequestParam(required = false) String limit,
            @RequestParam(required = false) String after) {
        callers.mayManageKeys(who);
        int most;
        try {
            most = BatchApiObjects.limit(limit, 20, 100);
        } catch (BatchApiException.Invalid wrong) {
            throw new InvalidRequestException(wrong.getMessage()); // the admin API answers in problem+json
        }
        return BatchApiObjects.ListPage.of(batches.listAll(most + 1, after), most, BatchApiObjects.BatchObject::of,
                BatchApiObjects.BatchObject::id);
    }
}
