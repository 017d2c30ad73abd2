package dev.batchgateway.web;

import org.springframework.boot.jackson.autoconfigure.JsonFactoryBuilderCustomizer;
import org.springframework.boot.jackson.autoconfigure.JsonMapperBuilderCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import tools.jackson.core.StreamReadConstraints;
import tools.jackson.core.StreamReadFeature;

/**
 * How much JSON the gateway is willing to parse. A request is a flat object of three fields, so the limits sit far
 * below Jackson's defaults: deep nesting, giant numbers and endless documents fail fast as 400, not after the parser
 * has spent memory and CPU on them.
 */
@Configuration(proxyBeanMethods = false)
class JsonLimits {

    /** {@code {"prompt": …}} needs one level; a little room for callers that send an extra object or array. */
    static final int MAX_NESTING_DEPTH = 16;
    /** Enough for any int64 and then some; longer digit runs are never a valid user_id or max_tokens. */
    static final int MAX_NUMBER_LENGTH = 40;
    static final int MAX_NAME_LENGTH = 256;
    static final long MAX_TOKENS = 10_000;

    @Bean
    JsonFactoryBuilderCustomizer jsonReadLimits() {
        return factory -> factory.streamReadConstraints(StreamReadConstraints.builder()
                .maxNestingDepth(MAX_NESTING_DEPTH)
                .maxNumberLength(MAX_NUMBER_LENGTH)
                .maxStringLength((int) RequestBodyLimit.MAX_BYTES)
                .maxNameLength(MAX_NAME_LENGTH)
                .maxDocumentLength(RequestBodyLimit.MAX_BYTES)
                .maxTokenCount(MAX_TOKENS)
                .build());
    }

    /** {@code {"prompt": "a", "prompt": "b"}} is refused rather than silently taking the last one. */
    @Bean
    JsonMapperBuilderCustomizer strictDuplicates() {
        return mapper -> mapper.enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION);
    }
}
