package dev.batchgateway;

import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.boot.diagnostics.FailureAnalysisReporter;

/**
 * A start-up failure is one plain line on stderr, whatever the log format: what is wrong and what to do. (Spring's
 * own reporter, a multi-line banner inside a JSON log line, is switched off in application.yml.)
 */
class OneLineFailureReport implements FailureAnalysisReporter {

    @Override
    public void report(FailureAnalysis analysis) {
        String action = analysis.getAction() == null || analysis.getAction().isBlank() ? "" : " " + analysis.getAction();
        System.err.println(("batch-gateway did not start: " + analysis.getDescription() + action).replaceAll("\\s*\\R\\s*", " "));
        System.err.flush();
    }
}
