package dev.batchgateway.architecture.planted.web;

import dev.batchgateway.identity.Caller;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;

/** One guarded endpoint and one that forgot to ask who is calling, used by ArchitectureTest. */
public class PlantedOpenEndpoint {

    @GetMapping("/planted/guarded")
    String guarded(Caller who) {
        return "ok";
    }

    @PostMapping("/planted/open")
    String forgotTheCaller(String body) {
        return body;
    }
}
