package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.batchgateway.worker.FakeVllm;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.env.MutablePropertySources;
import org.springframework.core.env.PropertySourcesPropertyResolver;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;

/**
 * deploy/kubernetes/ against the application itself. Every manifest the kustomization lists is read strictly with
 * fabric8's Kubernetes model (a field the model does not know, or that does not survive a round trip, fails); then the
 * application is started with the ConfigMap's settings and the Deployment's environment, and every probe the
 * Deployment names must answer on the port and path it names as the kubelet expects, and the grace period must cover
 * the shutdown phases the application is configured with. A manifest that drifts from the code fails the build.
 *
 * <p>Not checked here, for want of a cluster: that Kubernetes accepts the manifests (admission, defaults), that the
 * image builds, and the rollout itself. The worker is a fake vLLM serving the ConfigMap's model, the database the
 * test one; the application listens on free ports, mapped to the ports the manifests declare.
 */
class KubernetesManifestsTest {

    private static final Path DIRECTORY = Path.of("deploy/kubernetes");
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    /** Seconds UsageLedger waits for its writer after interrupting it, beyond the phase timeout (STOP_AFTER_INTERRUPT). */
    private static final long USAGE_WRITER_INTERRUPT_SECONDS = 5;
    private static final Duration SLACK = Duration.ofSeconds(60);

    private final HttpClient http = HttpClient.newHttpClient();

    @Test
    void theKustomizationListsEveryManifestAndEveryManifestParsesStrictly() throws IOException {
        // Given the kustomization, read as plain YAML: only the fields it uses, and every other file of the folder
        JsonNode kustomization = YAML.readTree(DIRECTORY.resolve("kustomization.yaml").toFile());
        assertThat(fieldNames(kustomization)).containsExactlyInAnyOrder("apiVersion", "kind", "labels", "resources");
        assertThat(kustomization.get("kind").asText()).isEqualTo("Kustomization");
        Set<String> listed = new TreeSet<>();
        kustomization.get("resources").forEach(resource -> listed.add(resource.asText()));
        try (Stream<Path> files = Files.list(DIRECTORY)) {
            assertThat(listed).isEqualTo(new TreeSet<>(files.map(file -> file.getFileName().toString())
                    .filter(name -> name.endsWith(".yaml") && !name.equals("kustomization.yaml")).toList()));
        }

        // Then each one is one kind fabric8 knows, every field of it too
        Manifests manifests = Manifests.read();
        assertThat(manifests.deployment().getSpec().getReplicas()).isEqualTo(2);
    }

    @Test
    void theResourcesFitTogether() {
        Manifests manifests = Manifests.read();
        Deployment deployment = manifests.deployment();
        Map<String, String> podLabels = deployment.getSpec().getTemplate().getMetadata().getLabels();
        Container gateway = manifests.container();

        // The Deployment's selector, the Service's, the PDB's select the pods
        assertThat(podLabels).containsAllEntriesOf(deployment.getSpec().getSelector().getMatchLabels());
        assertThat(podLabels).containsAllEntriesOf(manifests.service().getSpec().getSelector());
        assertThat(podLabels).containsAllEntriesOf(manifests.podDisruptionBudget().getSpec().getSelector().getMatchLabels());

        // The Service targets a named container port; the HPA scales this Deployment, never below what lets a node
        // drain (PDB) go on while a pod is down
        manifests.service().getSpec().getPorts()
                .forEach(port -> assertThat(containerPort(gateway, port.getTargetPort())).isPositive());
        var hpa = manifests.horizontalPodAutoscaler().getSpec();
        assertThat(hpa.getScaleTargetRef().getKind()).isEqualTo("Deployment");
        assertThat(hpa.getScaleTargetRef().getName()).isEqualTo(deployment.getMetadata().getName());
        assertThat(hpa.getMinReplicas()).isGreaterThan(manifests.podDisruptionBudget().getSpec().getMinAvailable().getIntVal());

        // A rollout never lowers capacity, and the settings come from the ConfigMap, the secrets from a Secret
        assertThat(deployment.getSpec().getStrategy().getRollingUpdate().getMaxUnavailable().getIntVal()).isZero();
        assertThat(gateway.getEnvFrom()).singleElement().satisfies(source ->
                assertThat(source.getConfigMapRef().getName()).isEqualTo(manifests.configMap().getMetadata().getName()));
        assertThat(gateway.getEnv().stream().filter(env -> env.getValueFrom() != null).map(EnvVar::getName))
                .contains("SPRING_DATASOURCE_PASSWORD", "GATEWAY_ADMIN_TOKEN");

        // The usage journal is on a volume of the pod, so that a restarted container replays what its predecessor journaled
        String journal = settings(manifests).get("GATEWAY_USAGE_JOURNAL_DIR");
        assertThat(journal).as("GATEWAY_USAGE_JOURNAL_DIR").isNotNull();
        assertThat(gateway.getVolumeMounts()).as("a volume mounted above " + journal)
                .anySatisfy(mount -> assertThat(journal).startsWith(mount.getMountPath() + "/"));

        // And every GATEWAY_* setting the manifests give is one the application reads (a typo would do nothing)
        String applicationYml = read(Path.of("src/main/resources/application.yml"));
        settings(manifests).keySet().stream().filter(name -> name.startsWith("GATEWAY_"))
                .forEach(name -> assertThat(applicationYml).as("application.yml reads " + name)
                        .containsPattern(Pattern.quote("${" + name) + "[:}]"));
    }

    /** Where the application started from the manifests journals: not the pod's path on this machine. */
    @TempDir
    Path journalDirectory;

    @Test
    void everyProbeAnswersOnItsPortAndPathAndTheGracePeriodCoversTheShutdown() throws Exception {
        // Given the application started with the manifests' settings, the secrets as placeholders, on free ports
        Manifests manifests = Manifests.read();
        Container gateway = manifests.container();
        String model = manifests.configMap().getData().get("GATEWAY_WORKER_MODEL");
        try (var vllm = new FakeVllm(model)) {
            var environment = new StandardEnvironment();
            environment.getPropertySources().addFirst(
                    new SystemEnvironmentPropertySource("manifests-systemEnvironment", new HashMap<>(settings(manifests))));
            // the worker's type and the admin token are the manifests' own
            ConfigurableApplicationContext application = TestGateway.simulated()
                    .without("gateway.worker.type", "gateway.identity.admin-token")
                    .inEnvironment(environment)
                    .with("gateway.worker.url", vllm.url())
                    .with("gateway.usage.journal-dir", journalDirectory)
                    .start();
            try {
                // The ports the pod would listen on: the settings without this test's overrides
                var declared = new MutablePropertySources(application.getEnvironment().getPropertySources());
                declared.remove("commandLineArgs");
                declared.remove("configurationProperties");
                var resolver = new PropertySourcesPropertyResolver(declared);
                int apiPort = Integer.parseInt(resolver.getRequiredProperty("server.port"));
                int managementPort = Integer.parseInt(resolver.getRequiredProperty("management.server.port"));
                Map<Integer, Integer> listening = Map.of(
                        apiPort, ((WebServerApplicationContext) application).getWebServer().getPort(),
                        managementPort, Integer.parseInt(application.getEnvironment().getRequiredProperty("local.management.port")));
                assertThat(gateway.getPorts()).extracting(ContainerPort::getContainerPort)
                        .containsExactlyInAnyOrder(apiPort, managementPort);

                // Then every probe answers as the kubelet expects (200-399), readiness once the worker answered
                Map<String, Probe> probes = new LinkedHashMap<>();
                probes.put("startupProbe", gateway.getStartupProbe());
                probes.put("livenessProbe", gateway.getLivenessProbe());
                probes.put("readinessProbe", gateway.getReadinessProbe());
                assertThat(probes.values()).doesNotContainNull();
                for (var probe : probes.entrySet()) {
                    var get = probe.getValue().getHttpGet();
                    assertThat(get).as(probe.getKey() + " is an HTTP GET").isNotNull();
                    assertThat(get.getScheme()).as(probe.getKey()).isIn(null, "HTTP");
                    int port = containerPort(gateway, get.getPort());
                    assertThat(listening).as(probe.getKey() + ": something listens on port " + port).containsKey(port);
                    URI uri = URI.create("http://localhost:" + listening.get(port) + get.getPath());
                    assertThat(awaitStatus(uri)).as(probe.getKey() + " " + get.getPath() + " on port " + port).isBetween(200, 399);
                }
                assertThat(gateway.getLivenessProbe().getHttpGet().getPath())
                        .as("liveness asks the management port's liveness, which depends on neither database nor worker, "
                                + "nor on the API port's connection cap (a flood must not restart the pod)")
                        .isEqualTo("/actuator/health/liveness");
                assertThat(listening.get(containerPort(gateway, gateway.getLivenessProbe().getHttpGet().getPort())))
                        .isEqualTo(listening.get(managementPort));

                // And Prometheus finds the metrics where the pod's annotations say
                var annotations = manifests.deployment().getSpec().getTemplate().getMetadata().getAnnotations();
                int metricsPort = Integer.parseInt(annotations.get("prometheus.io/port"));
                assertThat(listening).containsKey(metricsPort);
                assertThat(awaitStatus(URI.create("http://localhost:" + listening.get(metricsPort)
                        + annotations.get("prometheus.io/path")))).isEqualTo(200);
                // on the pod's own address, not only its loopback one, as the management port listens on loopback
                // alone unless the manifests open it (127.0.0.2: an address a loopback-only port refuses)
                assertThat(GatewayClient.accepts("127.0.0.2", listening.get(metricsPort)))
                        .as("the management port beyond 127.0.0.1 (MANAGEMENT_SERVER_ADDRESS)").isTrue();

                // And the grace period covers the preStop pause plus the phases of the shutdown that wait: the
                // scheduler's drain, the usage flush (plus its writer's interrupt bound) and the web server's
                Duration phase = application.getEnvironment()
                        .getRequiredProperty("spring.lifecycle.timeout-per-shutdown-phase", Duration.class);
                Set<String> waitingPhases = Set.of("schedulerShutdown", "usageLedgerShutdown", "webServerGracefulShutdown");
                assertThat(application.getBeansOfType(org.springframework.context.SmartLifecycle.class))
                        .as("the shutdown phases that wait").containsKeys(waitingPhases.toArray(String[]::new));
                List<String> preStop = gateway.getLifecycle().getPreStop().getExec().getCommand();
                assertThat(preStop).hasSize(2).first().isEqualTo("sleep");
                long needed = Long.parseLong(preStop.get(1)) + waitingPhases.size() * phase.toSeconds()
                        + USAGE_WRITER_INTERRUPT_SECONDS;
                assertThat(manifests.deployment().getSpec().getTemplate().getSpec().getTerminationGracePeriodSeconds())
                        .as("terminationGracePeriodSeconds covers preStop + %d phases of %s + %d s", waitingPhases.size(),
                                phase, USAGE_WRITER_INTERRUPT_SECONDS)
                        .isGreaterThanOrEqualTo(needed);
                // the preStop pause outlasts the readiness probe's notice, so no new connection arrives after SIGTERM
                var readiness = gateway.getReadinessProbe();
                assertThat(Long.parseLong(preStop.get(1)))
                        .isGreaterThanOrEqualTo((long) readiness.getPeriodSeconds() * readiness.getFailureThreshold());
            } finally {
                application.close();
            }
        }
    }

    /** The manifests of the kustomization, each read strictly. */
    record Manifests(ConfigMap configMap, Deployment deployment, Service service,
            PodDisruptionBudget podDisruptionBudget, HorizontalPodAutoscaler horizontalPodAutoscaler) {

        static Manifests read() {
            return new Manifests(
                    strict("configmap.yaml", ConfigMap.class),
                    strict("deployment.yaml", Deployment.class),
                    strict("service.yaml", Service.class),
                    strict("poddisruptionbudget.yaml", PodDisruptionBudget.class),
                    strict("horizontalpodautoscaler.yaml", HorizontalPodAutoscaler.class));
        }

        Container container() {
            return deployment.getSpec().getTemplate().getSpec().getContainers().getFirst();
        }
    }

    /**
     * Reads a manifest as the given kind, failing on a field the model does not know (fabric8 keeps those aside as
     * "additional properties" instead of refusing them) and on anything lost or changed in a round trip.
     */
    static <T> T strict(String file, Class<T> kind) {
        try {
            JsonNode tree = YAML.readTree(DIRECTORY.resolve(file).toFile());
            assertThat(tree.path("kind").asText()).as(file + " kind").isEqualTo(kind.getSimpleName());
            T parsed = YAML.treeToValue(tree, kind);
            List<String> unknown = new ArrayList<>();
            collectUnknownFields(parsed, kind.getSimpleName(), unknown);
            assertThat(unknown).as(file + ": fields the Kubernetes model does not know").isEmpty();
            assertThat(withoutEmpty(YAML.valueToTree(parsed))).as(file + " read back").isEqualTo(withoutEmpty(tree));
            return parsed;
        } catch (IOException e) {
            throw new UncheckedIOException(file, e);
        }
    }

    private static void collectUnknownFields(Object node, String path, List<String> unknown) {
        if (node instanceof Collection<?> items) {
            int i = 0;
            for (Object item : items) {
                collectUnknownFields(item, path + "[" + i++ + "]", unknown);
            }
            return;
        }
        if (node instanceof Map<?, ?> map) {
            map.forEach((key, value) -> collectUnknownFields(value, path + "." + key, unknown));
            return;
        }
        if (node == null || !node.getClass().getName().startsWith("io.fabric8.kubernetes.api.model.")) {
            return;
        }
        for (Method getter : node.getClass().getMethods()) {
            if (getter.getParameterCount() != 0 || !getter.getName().startsWith("get") || getter.getName().equals("getClass")) {
                continue;
            }
            Object value;
            try {
                value = getter.invoke(node);
            } catch (IllegalAccessException | InvocationTargetException e) {
                continue; // a computed getter (e.g. a quantity's numerical amount), not a field
            }
            if (getter.getName().equals("getAdditionalProperties")) {
                ((Map<?, ?>) value).keySet().forEach(field -> unknown.add(path + "." + field));
            } else {
                collectUnknownFields(value, path + "." + getter.getName().substring(3), unknown);
            }
        }
    }

    /**
     * A YAML tree as plain values to compare: maps, lists, texts, booleans, numbers by value (the model writes back a
     * long where YAML read an int), and without empty maps and lists, which the model may or may not write back.
     */
    private static Object withoutEmpty(JsonNode node) {
        if (node.isObject()) {
            Map<String, Object> fields = new TreeMap<>();
            node.fields().forEachRemaining(field -> {
                Object value = withoutEmpty(field.getValue());
                if (!isEmpty(value)) {
                    fields.put(field.getKey(), value);
                }
            });
            return fields;
        }
        if (node.isArray()) {
            List<Object> items = new ArrayList<>();
            node.elements().forEachRemaining(item -> {
                Object value = withoutEmpty(item);
                if (!isEmpty(value)) {
                    items.add(value);
                }
            });
            return items;
        }
        if (node.isNumber()) {
            return node.decimalValue().stripTrailingZeros();
        }
        return node.isBoolean() ? node.booleanValue() : node.isNull() ? "null" : "text:" + node.asText();
    }

    private static boolean isEmpty(Object value) {
        return value instanceof Map<?, ?> map && map.isEmpty() || value instanceof List<?> list && list.isEmpty();
    }

    /** The container's environment as the pod would have it: the ConfigMap, then the env entries, secrets as stand-ins. */
    private static Map<String, String> settings(Manifests manifests) {
        Map<String, String> settings = new LinkedHashMap<>(manifests.configMap().getData());
        for (EnvVar env : manifests.container().getEnv()) {
            if (env.getValue() != null) {
                settings.put(env.getName(), env.getValue());
            } else if (env.getValueFrom().getSecretKeyRef() != null && !Boolean.TRUE.equals(env.getValueFrom().getSecretKeyRef().getOptional())) {
                settings.put(env.getName(), "secret-" + env.getValueFrom().getSecretKeyRef().getKey() + "-stand-in-0123456789abcdef");
            }
        }
        return settings;
    }

    /** The number of a container port given by name or number; fails for one the container does not declare. */
    private static int containerPort(Container container, IntOrString port) {
        return container.getPorts().stream()
                .filter(declared -> port.getIntVal() != null
                        ? port.getIntVal().equals(declared.getContainerPort())
                        : port.getStrVal().equals(declared.getName()))
                .map(ContainerPort::getContainerPort)
                .findFirst()
                .orElseThrow(() -> new AssertionError("the container declares no port " + port));
    }

    /** The status of a GET, asked again while it is 503 or refused, up to the slack (readiness waits for the worker). */
    private int awaitStatus(URI uri) throws InterruptedException {
        long deadline = System.nanoTime() + SLACK.toNanos();
        int status;
        do {
            try {
                status = http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).build(),
                        HttpResponse.BodyHandlers.discarding()).statusCode();
            } catch (IOException e) {
                status = -1;
            }
            if (status != 503 && status != -1) {
                return status; // 503 (not ready yet) and no connection are worth another look, nothing else
            }
            Thread.sleep(100);
        } while (System.nanoTime() < deadline);
        return status;
    }

    private static Set<String> fieldNames(JsonNode node) {
        Set<String> names = new TreeSet<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
