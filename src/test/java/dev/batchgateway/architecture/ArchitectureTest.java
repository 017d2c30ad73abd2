package dev.batchgateway.architecture;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The hexagon's rules: the domain is plain Java, and adapters do not reach into one another. Each rule is also run
 * against classes planted to break it, so a rule that checks nothing (a misspelt package) fails here too.
 */
class ArchitectureTest {

    private static final String ROOT = "dev.batchgateway";
    private static final String PLANTED = "dev.batchgateway.architecture.planted";
    private static final List<String> ADAPTERS = List.of("web", "worker", "usage", "observability");

    private static final JavaClasses MAIN = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages(ROOT);
    private static final JavaClasses PLANTED_CLASSES = new ClassFileImporter().importPackages(PLANTED);
    /** Main and test classes: the mocking rule is about the tests. */
    private static final JavaClasses ALL = new ClassFileImporter()
            .withImportOption(location -> !location.contains("/architecture/planted/"))
            .importPackages(ROOT);
    private static final String[] MOCKING_LIBRARIES = {"org.mockito..", "org.easymock..", "io.mockk..", "org.jmock.."};

    /** The domain uses the JDK's language, collections, time and concurrency, and nothing else. */
    static ArchRule domainIsPlainJava(String root) {
        return classes().that().resideInAPackage(root + ".completion..")
                .should().onlyDependOnClassesThat().resideInAnyPackage(
                        root + ".completion..", "java.lang..", "java.util..", "java.time..")
                .because("the domain must not know Spring, JDBC, HTTP or any adapter");
    }

    static ArchRule adapterStaysInItsLane(String root, String adapter) {
        return noClasses().that().resideInAPackage(root + "." + adapter + "..")
                .should().dependOnClassesThat().resideInAnyPackage(ADAPTERS.stream()
                        .filter(other -> !other.equals(adapter))
                        .map(other -> root + "." + other + "..")
                        .toArray(String[]::new))
                .because("adapters talk to the domain's ports, never to each other");
    }

    /** Test doubles are hand-written implementations of the ports, named for what they do (STYLE.md, seed 001). */
    static ArchRule noMockingLibrary(String... libraries) {
        return noClasses().should().dependOnClassesThat().resideInAnyPackage(libraries)
                .because("doubles implement the ports by hand; a mock is a smell (STYLE.md)");
    }

    @Test
    void theDomainIsPlainJava() {
        domainIsPlainJava(ROOT).check(MAIN);
    }

    @Test
    void adaptersDoNotDependOnEachOther() {
        for (String adapter : ADAPTERS) {
            adapterStaysInItsLane(ROOT, adapter).check(MAIN);
        }
    }

    @Test
    void noClassUsesAMockingLibrary() {
        noMockingLibrary(MOCKING_LIBRARIES).check(ALL);
    }

    /**
     * Mockito is not on the test classpath (the pom excludes it), so the planted violation depends on a stand-in in a
     * planted package: it shows the rule's mechanism catches a dependency, the list above names the real libraries.
     */
    @Test
    void theMockingRuleCatchesAPlantedViolation() {
        assertThatThrownBy(() -> noMockingLibrary(PLANTED + ".mocking..").check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("PlantedMockingTest")
                .hasMessageContaining("PlantedMockLibrary");
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
    void theAdapterRuleCatchesAPlantedViolation() {
        assertThatThrownBy(() -> adapterStaysInItsLane(PLANTED, "web").check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("PlantedController")
                .hasMessageContaining("PlantedWorker");
        assertThatCode(() -> adapterStaysInItsLane(PLANTED, "worker").check(PLANTED_CLASSES))
                .doesNotThrowAnyException();
    }
}
