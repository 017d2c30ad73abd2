package dev.batchgateway.architecture;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchCondition;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.ConditionEvents;
import com.tngtech.archunit.lang.SimpleConditionEvent;
import dev.batchgateway.TestDatabase;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.platform.commons.annotation.Testable;
import org.junit.platform.commons.support.AnnotationSupport;
import org.springframework.boot.test.context.SpringBootTest;

/**
 * Every test class of the packages the mutation profile mutates (pom.xml) that runs against the test database carries
 * {@link TestDatabase#TAG}, directly or through an annotation such as {@code @SimulatedGatewayTest}: PIT leaves those
 * classes out, and one untagged class would rerun a database, or a whole gateway, for every mutant it reaches.
 */
class DatabaseTagTest {

    private static final String ROOT = "dev.batchgateway";
    private static final String PLANTED = "dev.batchgateway.architecture.planted";

    private static final JavaClasses MUTATED_PACKAGES_TESTS = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.ONLY_INCLUDE_TESTS)
            .importPackages(ROOT + ".completion", ROOT + ".worker", ROOT + ".usage");
    private static final JavaClasses PLANTED_CLASSES = new ClassFileImporter().importPackages(PLANTED);

    /** Has a method JUnit runs: {@code @Test}, {@code @ParameterizedTest}, jqwik's {@code @Property} … */
    private static final DescribedPredicate<JavaClass> RUN_AS_TESTS = DescribedPredicate.describe("hold tests",
            javaClass -> javaClass.isTopLevelClass() && javaClass.getMethods().stream()
                    .anyMatch(method -> method.isAnnotatedWith(Testable.class) || method.isMetaAnnotatedWith(Testable.class)));

    /** Reaches TestDatabase itself or through a helper of its own (UsageSchema), or starts a whole gateway, which runs on it. */
    private static final DescribedPredicate<JavaClass> REACH_THE_DATABASE = DescribedPredicate.describe(
            "reach the test database",
            javaClass -> javaClass.isMetaAnnotatedWith(SpringBootTest.class)
                    || javaClass.getDirectDependenciesFromSelf().stream().anyMatch(dependency -> isTestDatabase(dependency.getTargetClass())
                            || dependency.getTargetClass().getDirectDependenciesFromSelf().stream()
                                    .anyMatch(helperDependency -> isTestDatabase(helperDependency.getTargetClass()))));

    private static final ArchCondition<JavaClass> BE_TAGGED = new ArchCondition<>("be tagged " + TestDatabase.TAG) {
        @Override
        public void check(JavaClass javaClass, ConditionEvents events) {
            // JUnit's own lookup, so a tag on a composed annotation counts the way it counts when tests are selected
            boolean tagged = AnnotationSupport.findRepeatableAnnotations(javaClass.reflect(), Tag.class).stream()
                    .anyMatch(tag -> tag.value().equals(TestDatabase.TAG));
            events.add(new SimpleConditionEvent(javaClass, tagged,
                    javaClass.getName() + (tagged ? " is" : " is not") + " tagged " + TestDatabase.TAG));
        }
    };

    static ArchRule testsOnTheDatabaseAreTagged() {
        return classes().that(RUN_AS_TESTS).and(REACH_THE_DATABASE).should(BE_TAGGED)
                .because("the mutation profile leaves database tests out by this tag (pom.xml, --excludedGroups)");
    }

    private static boolean isTestDatabase(JavaClass javaClass) {
        return javaClass.isEquivalentTo(TestDatabase.class);
    }

    @Test
    void testsOnTheDatabaseInTheMutatedPackagesAreTagged() {
        testsOnTheDatabaseAreTagged().check(MUTATED_PACKAGES_TESTS);
    }

    @Test
    void theTagRuleCatchesPlantedUntaggedDatabaseTests() {
        assertThatThrownBy(() -> testsOnTheDatabaseAreTagged().check(PLANTED_CLASSES))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("PlantedUntaggedDatabaseTest is not tagged")
                .hasMessageContaining("PlantedUntaggedGatewayTest is not tagged")
                .hasMessageContaining("PlantedUntaggedSchemaTest is not tagged")
                .hasMessageNotContaining("PlantedTaggedDatabaseTest")
                .hasMessageNotContaining("PlantedTaggedGatewayTest")
                .hasMessageNotContaining("PlantedUnitTest");
    }
}
