package dev.batchgateway;

import dev.batchgateway.budget.BudgetSettings;
import dev.batchgateway.budget.BudgetStore;
import dev.batchgateway.budget.Budgets;
import dev.batchgateway.budget.DefaultLimits;
import dev.batchgateway.completion.Ticker;
import java.time.Clock;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.ConfigurableEnvironment;

/**
 * The injector for budgets: users' limits and their leases on the shared store. {@link Budgets} is also the scheduler's
 * {@link dev.batchgateway.completion.Settlement}: it settles each request's reservation when the scheduler says what the
 * request cost.
 */
@Configuration(proxyBeanMethods = false)
class BudgetConfiguration {

    @Bean
    BudgetSettings budgetSettings(ConfigurableEnvironment environment) {
        return SettingsCheck.bind(environment, "gateway.budget", BudgetSettings.class);
    }

    @Bean
    DefaultLimits defaultLimits(ConfigurableEnvironment environment) {
        return SettingsCheck.bind(environment, "gateway.default", DefaultLimits.class);
    }

    @Bean(destroyMethod = "close")
    Budgets budgets(BudgetStore store, DefaultLimits defaults, BudgetSettings budget) {
        return new Budgets(store, defaults.limits(), Clock.systemUTC(), Ticker.system(), budget.timing(),
                budget.leaseExpiry()).start();
    }

    /**
     * Gives back every budget held once the scheduler has answered its last callers (their reservations are
     * settled), before the database pool closes: other instances can use it at once.
     */
    @Bean
    SmartLifecycle budgetsShutdown(Budgets budgets) {
        // after the scheduler's drain, before the usage flush
        return PhasedLifecycle.of(SmartLifecycle.DEFAULT_PHASE - 256, () -> {}, () -> {
            try {
                budgets.giveBackEverything();
            } catch (RuntimeException storeAway) {
                // what cannot be given back stays held until its hold expires: never more than was held
            }
        });
    }
}
