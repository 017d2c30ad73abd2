package dev.batchgateway;

import java.lang.reflect.Method;
import java.util.Set;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.InvocationInterceptor;
import org.junit.jupiter.api.extension.ReflectiveInvocationContext;

/**
 * Lets a PIT mutation minion find its tests without running them. PIT's JUnit 5 plugin finds the tests of a minion by
 * running their classes (its JUnit5TestUnitFinder listens for tests that start), and every mutant that hangs the
 * tests costs a new minion: that rerun of every covering class took about 20 s of each restart. While the finder runs
 * in a mutation minion, this skips the test bodies and their before/after methods, so the tests are still reported; they
 * run for real right after, against each mutant. Only the mutation profile turns it on (pom.xml: Jupiter's extension
 * auto-detection, from META-INF/services); PIT's coverage run, the same finder in another minion, runs the tests in full.
 */
public final class PitMinionDiscovery implements InvocationInterceptor {

    private static final Set<String> FINDING_IN_A_MUTATION_MINION = Set.of(
            "org.pitest.junit5.JUnit5TestUnitFinder", "org.pitest.mutationtest.execute.MutationTestMinion");

    @Override
    public void interceptTestMethod(Invocation<Void> invocation, ReflectiveInvocationContext<Method> invocationContext,
            ExtensionContext extensionContext) throws Throwable {
        proceedUnlessFinding(invocation);
    }

    @Override
    public void interceptTestTemplateMethod(Invocation<Void> invocation,
            ReflectiveInvocationContext<Method> invocationContext, ExtensionContext extensionContext) throws Throwable {
        proceedUnlessFinding(invocation);
    }

    @Override
    public void interceptBeforeAllMethod(Invocation<Void> invocation, ReflectiveInvocationContext<Method> invocationContext,
            ExtensionContext extensionContext) throws Throwable {
        proceedUnlessFinding(invocation);
    }

    @Override
    public void interceptBeforeEachMethod(Invocation<Void> invocation,
            ReflectiveInvocationContext<Method> invocationContext, ExtensionContext extensionContext) throws Throwable {
        proceedUnlessFinding(invocation);
    }

    @Override
    public void interceptAfterEachMethod(Invocation<Void> invocation, ReflectiveInvocationContext<Method> invocationContext,
            ExtensionContext extensionContext) throws Throwable {
        proceedUnlessFinding(invocation);
    }

    @Override
    public void interceptAfterAllMethod(Invocation<Void> invocation, ReflectiveInvocationContext<Method> invocationContext,
            ExtensionContext extensionContext) throws Throwable {
        proceedUnlessFinding(invocation);
    }

    private static void proceedUnlessFinding(Invocation<Void> invocation) throws Throwable {
        if (findingInAMutationMinion()) {
            invocation.skip();
        } else {
            invocation.proceed();
        }
    }

    private static boolean findingInAMutationMinion() {
        long frames = StackWalker.getInstance().walk(stack -> stack
                .map(frame -> frame.getClassName())
                .filter(FINDING_IN_A_MUTATION_MINION::contains)
                .distinct()
                .count());
        return frames == FINDING_IN_A_MUTATION_MINION.size();
    }
}
