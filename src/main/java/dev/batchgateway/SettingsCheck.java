package dev.batchgateway;

import dev.batchgateway.batch.BatchSettings;
import dev.batchgateway.budget.BudgetSettings;
import dev.batchgateway.budget.DefaultLimits;
import dev.batchgateway.completion.SchedulerSettings;
import dev.batchgateway.identity.IdentitySettings;
import dev.batchgateway.identity.KeySettings;
import dev.batchgateway.settings.InvalidConfigurationException;
import dev.batchgateway.usage.UsageSettings;
import dev.batchgateway.web.WebSettings;
import dev.batchgateway.worker.WorkerSettings;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.springframework.boot.context.properties.bind.AbstractBindHandler;
import org.springframework.boot.context.properties.bind.BindContext;
import org.springframework.boot.context.properties.bind.BindException;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.ConfigurationPropertyName;
import org.springframework.boot.context.properties.source.ConfigurationPropertySources;
import org.springframework.context.ApplicationContextInitializer;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.PropertySource;

/**
 * Binds and checks every {@code gateway.*} setting before any bean is created (a bean-factory post-processor, so after
 * every property source, tests' dynamic ones included), so the connection pool and Flyway never start with a bad
 * setting and a bad setting is never hidden behind a database error. It refuses what Spring
 * would accept silently (a duration without a unit is milliseconds) and turns every binding failure into one line
 * naming the variable. Each package owns its settings record (listed in {@link #SETTINGS}); a new setting in one of them
 * is checked without changes here, a new record is one more line there.
 */
class SettingsCheck implements ApplicationContextInitializer<ConfigurableApplicationContext> {

    /** A package's settings record and the prefix it is bound from. */
    record Part<T>(String prefix, Class<T> type) {}

    /** Every package's settings, in the order they are checked (a bad setting is named by the first that reads it). */
    static final List<Part<?>> SETTINGS = List.of(
            new Part<>("gateway", SchedulerSettings.class),
            new Part<>("gateway", WorkerSettings.class),
            new Part<>("gateway.usage", UsageSettings.class),
            new Part<>("gateway.identity", IdentitySettings.class),
            new Part<>("gateway.key", KeySettings.class),
            new Part<>("gateway.default", DefaultLimits.class),
            new Part<>("gateway.budget", BudgetSettings.class),
            new Part<>("gateway", WebSettings.class),
            new Part<>("gateway.batch-api", BatchSettings.class));

    private static final Pattern UNITLESS = Pattern.compile("\\s*[-+]?\\d+\\s*");

    @Override
    public void initialize(ConfigurableApplicationContext context) {
        context.addBeanFactoryPostProcessor(beanFactory -> {
            // slices that leave the gateway out (@JdbcTest, …) do not need its settings
            if (beanFactory.getBeanNamesForType(GatewayConfiguration.class, true, false).length > 0) {
                check(context.getEnvironment());
            }
        });
    }

    static void check(ConfigurableEnvironment environment) {
        String logFormat = environment.getProperty(LogFormatCheck.INVALID);
        if (logFormat != null) {
            throw new InvalidConfigurationException("GATEWAY_LOG_FORMAT=" + logFormat
                    + " is not a log format: set it to ecs, logstash or gelf (JSON), or to empty for plain text");
        }
        refusePlaceholdersInAdminTokens(environment);
        for (Part<?> part : SETTINGS) {
            bind(environment, part.prefix(), part.type());
        }
    }

    /**
     * A package's settings, bound as the check binds them: a duration without a unit, a value of the wrong type or one
     * its record refuses is one line naming the variable. Unset, they are the record's defaults.
     */
    static <T> T bind(ConfigurableEnvironment environment, String prefix, Class<T> type) {
        try {
            return Binder.get(environment).bindOrCreate(prefix, Bindable.of(type), new UnitlessDurations(environment));
        } catch (BindException e) {
            for (Throwable cause = e; cause != null; cause = cause.getCause()) {
                if (cause instanceof InvalidConfigurationException invalid) {
                    throw invalid;
                }
            }
            throw new InvalidConfigurationException(describe(e, environment));
        }
    }

    /**
     * Spring expands a placeholder ({@code ${…}}) in every setting's value, a secret's too: {@code ${HOME}} becomes a
     * directory, and a backslash before one is dropped. An admin token holding one would silently be another token, so
     * it is refused, judged on the value as given (and never shown).
     */
    private static void refusePlaceholdersInAdminTokens(ConfigurableEnvironment environment) {
        for (String variable : List.of("GATEWAY_ADMIN_TOKEN", "GATEWAY_ADMIN_TOKENS")) {
            for (PropertySource<?> source : environment.getPropertySources()) {
                if (ConfigurationPropertySources.isAttachedConfigurationPropertySource(source)) {
                    continue; // a view of the other sources, by Spring's own names
                }
                if (source.getProperty(variable) instanceof String given) {
                    if (given.contains("${")) {
                        throw new InvalidConfigurationException(variable + " holds '${', which Spring reads as a placeholder"
                                + " and replaces: generate a token without it, e.g. openssl rand -base64 32");
                    }
                    break;
                }
            }
        }
    }

    private static String describe(BindException e, ConfigurableEnvironment environment) {
        String variable = variable(e.getName());
        Object raw = e.getProperty() == null ? null : e.getProperty().getValue();
        String value = raw == null ? "" : environment.resolvePlaceholders(raw.toString());
        Class<?> type = e.getTarget().getType().resolve(Object.class);
        String expected;
        if (type.isEnum()) {
            expected = "set it to one of " + Arrays.stream(type.getEnumConstants())
                    .map(c -> ((Enum<?>) c).name().toLowerCase(Locale.ROOT)).collect(Collectors.joining(", "));
        } else if (type == int.class || type == Integer.class || type == long.class || type == Long.class) {
            expected = "set it to a whole number, e.g. 8";
        } else if (type == Duration.class) {
            expected = "set it to a duration with a unit, e.g. 5s or 200ms";
        } else {
            expected = "see README, section Configuration";
        }
        return variable + "=" + shown(e.getName(), value) + " is not valid: " + expected;
    }

    /** A secret (an API key, a token, a password) is never repeated in the message, only named. */
    private static String shown(ConfigurationPropertyName name, String value) {
        String last = name.getLastElement(ConfigurationPropertyName.Form.DASHED);
        return last.endsWith("key") || last.endsWith("token") || last.endsWith("tokens") || last.endsWith("password") || last.endsWith("secret") ? "(hidden)" : value;
    }

    /** gateway.batch.max-wait → GATEWAY_BATCH_MAX_WAIT, the variable application.yml reads it from. */
    static String variable(ConfigurationPropertyName name) {
        return name.toString().toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_').replaceAll("\\[(\\d+)]", "_$1");
    }

    /** Spring reads "5" as 5 ms; nobody who writes GATEWAY_REQUEST_TIMEOUT=5 means that. */
    private static final class UnitlessDurations extends AbstractBindHandler {

        private final ConfigurableEnvironment environment;

        UnitlessDurations(ConfigurableEnvironment environment) {
            this.environment = environment;
        }

        @Override
        public Object onSuccess(ConfigurationPropertyName name, Bindable<?> target, BindContext context, Object result) {
            if (target.getType().resolve() == Duration.class && context.getConfigurationProperty() != null) {
                Object raw = context.getConfigurationProperty().getValue();
                String value = raw == null ? "" : environment.resolvePlaceholders(raw.toString());
                if (UNITLESS.matcher(value).matches()) {
                    throw new InvalidConfigurationException(variable(name) + "=" + value.strip()
                            + " has no unit: write e.g. " + value.strip() + "s or " + value.strip() + "ms");
                }
            }
            return super.onSuccess(name, target, context, result);
        }
    }
}
