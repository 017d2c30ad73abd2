package dev.batchgateway.architecture;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.methods;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.domain.JavaMethod;
import com.tngtech.archunit.lang.ArchCondition;
import com.tngtech.archunit.lang.ConditionEvents;
import com.tngtech.archunit.lang.SimpleConditionEvent;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import dev.batchgateway.completion.SchedulerEvents;
import dev.batchgateway.completion.Settlement;
import dev.batchgateway.identity.Caller;
import java.util.List;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.junit.jupiter.api.Test;

/**
 * The hexagon's rules: the domain is plain Java, and adapters do not reach into one another. Each rule is also run
 * against classes planted to break it, so a rule that checks nothing (a misspelt package) fails here too.
 */
class ArchitectureTest {

    private static final String ROOT = "dev.batchgateway";
    private static final String PLANTED = "dev.batchgateway.architecture.planted";
    private static final List<String> ADAPTERS = List.of("web", "worker", "usage", "observability", "keys", "limits", "audit", "batchstore");

    private static final JavaClasses MAIN = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages(ROOT);
    private static final JavaClasses PLANTED_CLASSES = new ClassFileImporter().importPackages(PLANTED);

    /** The domain uses the JDK's language, collections, time and concurrency, and nothing else. */
    static ArchRule domainIsPlainJava(String root) {
        return classes().that().resideInAPackage(root + ".completion..")
                .should().onlyDependOnClassesThat().resideInAnyPackage(
                        root + ".completion..", root + ".settings..", "java.lang..", "java.util..", "java.time..")
                .because("the domain must not know Spring, JDBC, HTTP or any adapter");
    }

    /**
     * Identity (who is calling, API keys) is domain too: plain Java plus {@code java.security} for its digests and
     * random keys, and Caffeine's cache for its key answers (an in-memory collection with a ticker, no I/O), and
     * independent of the scheduling domain, which never learns who calls.
     */
    static ArchRule identityIsPlainJava(String root) {
        return classes().that().resideInAPackage(root + ".identity..")
                .should().onlyDependOnClassesThat().resideInAnyPackage(
                        root + ".identity..", root + ".settings..", "java.lang..", "java.util..", "java.time..", "java.security..", "java.nio.charset..",
                        "com.github.benmanes.caffeine.cache")
                .because("identity is domain: no Spring, JDBC, HTTP, adapter, nor the scheduling domain");
    }

    /**
     * Budgets (limits, reservations, leases) are domain too: plain Java on top of the scheduling domain, whose
     * requests they admit and settle; they know neither identity nor any adapter.
     */
    static ArchRule budgetIsPlainJava(String root) {
        return classes().that().resideInAPackage(root + ".budget..")
                .should().onlyDependOnClassesThat().resideInAnyPackage(
                        root + ".budget..", root + ".completion..", root + ".settings..", "java.lang..", "java.util..", "java.time..")
                .because("budgets are domain: no Spring, JDBC, HTTP, adapter, nor identity");
    }

    /**
     * The Batch API's domain (files, batches, the runner that submits lines through the completion port) is plain Java
     * too, plus {@code java.io} for the files' bytes; it knows the scheduling domain and budgets (a limit makes a batch
     * wait), never identity or an adapter: the web adapter speaks its line format, the JDBC adapter stores it.
     */
    static ArchRule batchIsPlainJava(String root) {
        return classes().that().resideInAPackage(root + ".batch..")
                .should().onlyDependOnClassesThat().resideInAnyPackage(
                        root + ".batch..", root + ".completion..", root + ".budget..", root + ".settings..", "java.lang..",
                        "java.util..", "java.time..", "java.io..")
                .because("the Batch API's domain must not know Spring, JDBC, HTTP, JSON, identity or any adapter");
    }

    /**
     * Every HTTP endpoint but the plain {@code /health} takes a {@link Caller}: that parameter is what makes the web
     * adapter tell who is calling (and refuse nobody-in-particular), so an endpoint without one would be open to all.
     */
    static ArchRule everyEndpointAsksWhoIsCalling(String root) {
        return methods().that().areDeclaredInClassesThat().resideInAPackage(root + "..")
                .and().areAnnotatedWith(GetMapping.class).or().areAnnotatedWith(PostMapping.class)
                .or().areAnnotatedWith(DeleteMapping.class).or().areAnnotatedWith(PutMapping.class)
                .or().areAnnotatedWith(PatchMapping.class).or().areAnnotatedWith(RequestMapping.class)
                .and().doNotHaveName("health")
                .should(new ArchCondition<JavaMethod>("take a Caller parameter") {
                    @Override
                    public void check(JavaMethod method, ConditionEvents events) {
                        if (method.getRawParameterTypes().stream().noneMatch(type -> type.isEquivalentTo(Caller.class))) {
                            events.add(SimpleConditionEvent.violated(method, method.getFullName() + " takes no Caller"));
                        }
                    }
                })
                .because("an endpoint that does not ask who is calling is open to everyone");
    }

    /**
     * Settlement is money, not telemetry: the scheduler's observer bus ({@link SchedulerEvents}, whose composite logs and
     * drops an observer's failure) must not carry it, or a settlement that throws leaks a reservation silently. No
     * observer settles (depends on the {@link Settlement} port or on budgets) or is itself a settlement, and budgets are
     * never observers: they hear of a request's end through {@code Settlement} alone.
     */
    static ArchRule settlementIsNotOnTheObserverBus(String root) {
        return noClasses().that().implement(SchedulerEvents.class)
                .should().dependOnClassesThat().areAssignableTo(Settlement.class)
                .orShould().dependOnClassesThat().resideInAPackage(root + ".budget..")
                .orShould().beAssignableTo(Settlement.class)
                .orShould().resideInAPackage(root + ".budget..")
                .because("settlement must not be lost with an observer's failure: it goes through the Settlement port");
    }

    /**
     * The root package is the wiring (Spring Boot's entry point, the {@code @Configuration} classes, the start-up
     * checks): it may import every package, and no package imports it. Each package reads its own settings record.
     */
    static ArchRule noPackageImportsTheRoot(String root) {
        return noClasses().that().resideInAPackage(root + ".*..")
                .should().dependOnClassesThat().resideInAPackage(root)
                .because("the arrows go from the wiring to the packages, never from a package up to the wiring");
    }

    static ArchRule adapterStaysInItsLane(String root, String adapter) {
        return noClasses().that().resideInAPackage(root + "." + adapter + "..")
                .should().dependOnClassesThat().resideInAnyPackage(ADAPTERS.stream()
                        .filter(other -> !other.equals(adapter))
                        .map(other -> root + "." + other + "..")
                        .toArray(String[]::new))
                .because("adapters talk to the domain's ports, never to each other");
    }

    /**
     * The controllers' shared reading of request values ({@code http}) is common ground below the adapters: each may use
     * it because it knows none of them.
     */
    static ArchRule sharedRequestValuesKnowNoAdapter(String root) {
        return noClasses().that().resideInAPackage(root + ".http..")
                .should().dependOnClassesThat().resideInAnyPackage(ADAPTERS.stream().map(adapter -> root + "." + adapter + "..")
                        .toArray(String[]::new))
                .because("adapters share it, so it must not lead from one adapter into another");
    }

    @Test
    void theDomainIsPlainJava() {
        domainIsPlainJava(ROOT).check(MAIN);
    }

    @Test
    void everyEndpointButHealthAsksWhoIsCalling() {
        everyEndpointAsksWhoIsCalling(ROOT).check(MAIN);
    }

    @Test
    void theEndpointRuleCatchesAPlantedOpenEndpoint() {
        assertThatThrownBy(() -> everyEndpointAsksWhoIsCalling(PLANTED).check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("forgotTheCaller")
                .hasMessageNotContaining("guarded(");
    }

    @Test
    void identityIsPlainJava() {
        identityIsPlainJava(ROOT).check(MAIN);
    }

    @Test
    void budgetIsPlainJava() {
        budgetIsPlainJava(ROOT).check(MAIN);
    }

    @Test
    void batchIsPlainJava() {
        batchIsPlainJava(ROOT).check(MAIN);
    }

    @Test
    void theBatchRuleCatchesAPlantedViolation() {
        assertThatThrownBy(() -> batchIsPlainJava(PLANTED).check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("java.sql.Connection")
                .hasMessageContaining("org.springframework.stereotype.Component")
                .hasMessageContaining("PlantedIdentityClass")
                .hasMessageNotContaining("PlantedDomainClass");
    }

    @Test
    void theBudgetRuleCatchesAPlantedViolation() {
        assertThatThrownBy(() -> budgetIsPlainJava(PLANTED).check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("java.sql.Connection")
                .hasMessageContaining("org.springframework.stereotype.Component")
                .hasMessageContaining("PlantedIdentityClass")
                .hasMessageNotContaining("PlantedDomainClass");
    }

    @Test
    void everyPackageTheRulesNameExists() {
        for (String layer : java.util.stream.Stream.concat(ADAPTERS.stream(), java.util.stream.Stream.of("completion", "identity", "budget", "http", "batch")).toList()) {
            assertThat(MAIN.stream().anyMatch(c -> c.getPackageName().equals(ROOT + "." + layer)))
                    .as("package " + ROOT + "." + layer + " exists, so the rules naming it check something").isTrue();
        }
    }

    @Test
    void theIdentityRuleCatchesAPlantedViolation() {
        assertThatThrownBy(() -> identityIsPlainJava(PLANTED).check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("java.sql.Connection")
                .hasMessageContaining("org.springframework.stereotype.Component")
                .hasMessageContaining("PlantedDomainClass")
                .hasMessageNotContaining("java.security.MessageDigest");
    }

    @Test
    void settlementIsNotOnTheObserverBus() {
        settlementIsNotOnTheObserverBus(ROOT).check(MAIN);
    }

    @Test
    void theSettlementRuleCatchesPlantedObserversThatSettleOrBudgetsThatObserve() {
        assertThatThrownBy(() -> settlementIsNotOnTheObserverBus(PLANTED).check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("PlantedSettlingObserver")
                .hasMessageContaining("PlantedObservingBudget")
                .hasMessageNotContaining("PlantedMetricsObserver");
    }

    @Test
    void adaptersDoNotDependOnEachOther() {
        for (String adapter : ADAPTERS) {
            adapterStaysInItsLane(ROOT, adapter).check(MAIN);
        }
    }

    @Test
    void noPackageImportsTheRootPackage() {
        noPackageImportsTheRoot(ROOT).check(MAIN);
    }

    @Test
    void theRootRuleCatchesAPlantedAdapterReadingRootSettings() {
        assertThatThrownBy(() -> noPackageImportsTheRoot(PLANTED).check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("PlantedUsageSettingsReader")
                .hasMessageContaining("PlantedGatewayProperties")
                // the wiring importing a package is the allowed direction
                .hasMessageNotContaining("PlantedWiring");
    }

    @Test
    void theDomainRuleCatchesAPlantedViolation() {
        assertThatThrownBy(() -> domainIsPlainJava(PLANTED).check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("java.sql.Connection")
                .hasMessageContaining("java.net.http.HttpClient")
                .hasMessageContaining("org.springframework.stereotype.Component")
                .hasMessageContaining("PlantedWorker");
    }

    @Test
    void sharedRequestValuesKnowNoAdapter() {
        sharedRequestValuesKnowNoAdapter(ROOT).check(MAIN);
    }

    @Test
    void theSharedRequestValuesRuleCatchesAPlantedViolation() {
        assertThatThrownBy(() -> sharedRequestValuesKnowNoAdapter(PLANTED).check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("PlantedRequestValue")
                .hasMessageContaining("PlantedController");
    }

    @Test
    void theAdapterRuleCatchesAPlantedViolation() {
        assertThatThrownBy(() -> adapterStaysInItsLane(PLANTED, "web").check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("PlantedController")
                .hasMessageContaining("PlantedWorker");
        assertThatCode(() -> adapterStaysInItsLane(PLANTED, "worker").check(PLANTED_CLASSES))
                .doesNotThrowAnyException();
    }
}
