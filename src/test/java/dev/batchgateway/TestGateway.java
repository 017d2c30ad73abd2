package dev.batchgateway;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ApplicationContextInitializer;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.env.ConfigurableEnvironment;

/**
 * A whole gateway that a test starts by hand, where {@link GatewayApplicationTest}'s shared context will not do: a second
 * instance, a database of the test's own, a start that must fail, a stop in the middle of the test, a child JVM. It
 * starts on free ports (0), against this run's {@link TestDatabase}, with the simulated worker and the test admin token;
 * a test names only the settings it changes, by their property names as on the command line (where they outrank
 * application.yml's placeholders), and takes a default away with {@link #without}.
 */
public final class TestGateway {

    private final Map<String, String> settings = new LinkedHashMap<>();
    private final List<Class<?>> configurations = new ArrayList<>();
    private final List<ApplicationContextInitializer<?>> initializers = new ArrayList<>();
    private ConfigurableEnvironment environment;

    private TestGateway() {
        settings.put("server.port", "0");
        settings.put("management.server.port", "0");
        settings.put("gateway.worker.type", "simulated");
        settings.put("gateway.identity.admin-token", GatewayApplicationTest.ADMIN_TOKEN);
    }

    /** A gateway with the defaults, on this run's shared test database unless told {@link #onDatabase another}. */
    public static TestGateway simulated() {
        return new TestGateway();
    }

    /** On another database than the shared one's (a database of its own, one that is not there). */
    public TestGateway onDatabase(String url, String username, String password) {
        return with("spring.datasource.url", url)
                .with("spring.datasource.username", username)
                .with("spring.datasource.password", password);
    }

    /** On a PostgreSQL of the test's own on this local port, with PostgreSQL's default user (an embedded one's). */
    public TestGateway onDatabaseAt(int port) {
        return onDatabase("jdbc:postgresql://localhost:" + port + "/postgres", "postgres", "postgres");
    }

    /** A setting by its property name, e.g. {@code with("gateway.batch.max-wait", "2ms")}; replaces a default. */
    public TestGateway with(String name, Object value) {
        settings.put(name, String.valueOf(value));
        return this;
    }

    /** A setting written {@code name=value}, as in a test's table of settings. */
    public TestGateway with(String setting) {
        int equals = setting.indexOf('=');
        if (equals < 1) {
            throw new IllegalArgumentException("a setting is name=value, was '" + setting + "'");
        }
        return with(setting.substring(0, equals), setting.substring(equals + 1));
    }

    /** Leaves these settings unset, defaults included, so that the gateway's own configuration applies. */
    public TestGateway without(String... names) {
        for (String name : names) {
            settings.remove(name);
        }
        return this;
    }

    /** Spring configuration of the test's own (doubles, spies) beside the application's. */
    public TestGateway withConfiguration(Class<?> configuration) {
        configurations.add(configuration);
        return this;
    }

    /** Runs before the context is refreshed, as Spring's initializers do. */
    public TestGateway withInitializer(ApplicationContextInitializer<ConfigurableApplicationContext> initializer) {
        initializers.add(initializer);
        return this;
    }

    /** Starts in this environment (e.g. one holding a deployment's variables), the settings here still outranking it. */
    public TestGateway inEnvironment(ConfigurableEnvironment environment) {
        this.environment = environment;
        return this;
    }

    /** The settings as command-line arguments, {@code --name=value}: for a gateway in a child JVM. */
    public List<String> arguments() {
        if (!settings.containsKey("spring.datasource.url")) {
            // started only when used: a test on a database of its own does not wait for the shared one
            TestDatabase.get().settings().forEach(this::with);
        }
        return settings.entrySet().stream().map(setting -> "--" + setting.getKey() + "=" + setting.getValue()).toList();
    }

    /** Starts the gateway in this JVM and returns once it is ready; the test closes it. */
    public ConfigurableApplicationContext start() {
        var sources = new ArrayList<Class<?>>(List.of(BatchGatewayApplication.class));
        sources.addAll(configurations);
        var application = new SpringApplicationBuilder(sources.toArray(Class<?>[]::new))
                .initializers(initializers.toArray(ApplicationContextInitializer<?>[]::new));
        if (environment != null) {
            application.environment(environment);
        }
        return application.run(arguments().toArray(String[]::new));
    }

    /** The API port a started gateway listens on. */
    public static int port(ConfigurableApplicationContext gateway) {
        return gateway.getEnvironment().getRequiredProperty("local.server.port", Integer.class);
    }

    /** The management port a started gateway listens on. */
    public static int managementPort(ConfigurableApplicationContext gateway) {
        return gateway.getEnvironment().getRequiredProperty("local.management.port", Integer.class);
    }

    /** A port no one listens on now: for a gateway whose ports a test must know before it starts, or a database's. */
    public static int freePort() {
        try (var socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free port", e);
        }
    }

    /** A client of a started gateway, on both its ports. */
    public static GatewayClient client(ConfigurableApplicationContext gateway) {
        return new GatewayClient(port(gateway), managementPort(gateway));
    }
}
