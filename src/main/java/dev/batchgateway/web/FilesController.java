package dev.batchgateway.web;

import dev.batchgateway.batch.BatchFiles;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RequestPart;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.multipart.MultipartFile;

/**
 * OpenAI's Files API for the Batch API: {@code POST /v1/files} (multipart, {@code purpose=batch}), {@code GET /v1/files},
 * {@code GET /v1/files/{id}}, {@code GET /v1/files/{id}/content}, {@code DELETE /v1/files/{id}}. A file is its key's
 * user's: another user gets 404. Bytes stream in and out a chunk at a time ({@link BatchFiles}).
 */
@RestController
class FilesController {

    private final BatchFiles files;
    private final Callers callers;

    FilesController(BatchFiles files, Callers callers) {
        this.files = files;
        this.callers = callers;
    }

    @PostMapping(path = "/v1/files", consumes = MediaType.MULTIPART_FORM_DATA_VALUE, produces = MediaType.APPLICATION_JSON_VALUE)
    BatchApiObjects.FileObject upload(Caller who, @RequestParam("purpose") String purpose, @RequestPart("file") MultipartFile file)
            throws IOException {
        long user = BatchApiObjects.owner(callers, who);
        try (InputStream content = file.getInputStream()) {
            return BatchApiObjects.FileObject.of(files.upload(user, file.getOriginalFilename(), purpose, content));
        }
    }

    @GetMapping(path = "/v1/files", produces = MediaType.APPLICATION_JSON_VALUE)
    BatchApiObjects.ListPage<BatchApiObjects.FileObject> list(Caller who, @RequestParam(required = false) String limit,
            @RequestParam(required = false) String after) {
        long user = BatchApiObjects.owner(callers, who);
        int most = BatchApiObjects.limit(limit, 10_000, 10_000);
        return BatchApiObjects.ListPage.of(files.list(user, most + 1, after), most, BatchApiObjects.FileObject::of,
                BatchApiObjects.FileObject::id);
    }

    @GetMapping(path = "/v1/files/{id}", produces = MediaType.APPLICATION_JSON_VALUE)
    BatchApiObjects.FileObject file(Caller who, @PathVariable String id) {
        return BatchApiObjects.FileObject.of(files.find(BatchApiObjects.owner(callers, who), id));
    }

    /** The file's bytes, streamed from the store a chunk at a time. */
    @GetMapping(path = "/v1/files/{id}/content")
    void content(Caller who, @PathVariable String id, HttpServletResponse response) throws IOException {
        long user = BatchApiObjects.owner(callers, who);
        files.find(user, id); // 404 before a byte is written
        response.setContentType(MediaType.APPLICATION_OCTET_STREAM_VALUE);
        files.copy(user, id, response.getOutputStream());
    }

    @DeleteMapping(path = "/v1/files/{id}", produces = MediaType.APPLICATION_JSON_VALUE)
    BatchApiObjects.Deleted delete(Caller who, @PathVariable String id) {
        files.delete(BatchApiObjects.owner(callers, who), id);
        return new BatchApiObjects.Deleted(id, "file", true);
    }
}
