package dev.batchgateway.budget;

import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** This instance's budgets, one per user with slices here; one retired (all given back) is replaced when needed. */
final class UserBudgets {

    private final Map<Long, UserBudget> users = new ConcurrentHashMap<>();

    /** The user's budget, locked: the caller unlocks it. */
    UserBudget lock(long user) {
        while (true) {
            UserBudget budget = users.computeIfAbsent(user, UserBudget::new);
            budget.lock.lock();
            if (!budget.retired) {
                return budget;
            }
            budget.lock.unlock();
        }
    }

    /** The user's budget, null when this instance holds nothing for the user. */
    UserBudget get(long user) {
        return users.get(user);
    }

    Collection<UserBudget> all() {
        return users.values();
    }

    /** The budget holds nothing any more and no lease is on its way: it goes (under its lock). */
    void retire(UserBudget budget) {
        budget.retired = true;
        users.remove(budget.user, budget);
    }
}
