package dev.batchgateway.completion;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * The implementation of {@link FairShare} as of commit dd9ca26, before it was made cheap per seat (it does O(users) work
 * for every seat), kept unchanged but for its name as the oracle of {@link FairShareEquivalenceTest}.
 *
 * <p>Fair share between users: deficit round robin (Shreedhar and Varghese, 1995) by user, each request weighing its
 * {@link TokenBound}, each user's own requests in the order they came (FIFO).
 *
 * <p>The users with requests waiting take turns. On its turn a user gains a quantum of credit ({@value #QUANTUM}
 * token by default) and sends its oldest requests while its credit covers their token bounds; a user whose oldest
 * request costs more than its credit keeps the credit for its next turn, so a long prompt takes as many turns as its
 * size and buys no more than its share. A user with nothing left waiting leaves the round and its credit. Rounds in
 * which nobody could send are not walked one by one: their credit is given all at once.
 *
 * <p>The bound: a user who arrives with one request of bound b is served within {@code ⌈b/Q⌉} rounds (Q the quantum),
 * and in each round every other user sends at most Q plus one request's worth of tokens: with the default quantum, at
 * most about {@code b/c + 1} requests of another user whose requests weigh c each, however many it has queued. With
 * requests of about the same size, one or two of each other waiting user are ahead of it: the next batch.
 */
final class ReferenceFairShare implements LanePolicy {

    /**
     * One token a turn, the finest share: a larger quantum lets a user with many small requests send a quantum's worth
     * of them on each turn (with 256, ten requests of 25 tokens: more than a batch) before a newcomer's first.
     */
    static final long QUANTUM = 1;

    private final long quantum;
    /** Users with requests waiting, in round order: the first is the one whose turn it is. */
    private final LinkedHashMap<Long, User> round = new LinkedHashMap<>();

    ReferenceFairShare() {
        this(QUANTUM);
    }

    ReferenceFairShare(long quantum) {
        if (quantum < 1) {
            throw new IllegalArgumentException("the quantum is at least one token, was " + quantum);
        }
        this.quantum = quantum;
    }

    @Override
    public void add(Queued request) {
        round.computeIfAbsent(request.userId(), id -> new User()).waiting.addLast(request);
    }

    @Override
    public Queued next(Predicate<Queued> eligible) {
        // each user with something eligible, in round order, with the head it would send and when it could send it
        List<User> candidates = new ArrayList<>();
        List<Queued> heads = new ArrayList<>();
        for (User user : round.values()) {
            Queued head = user.first(eligible);
            if (head != null) {
                candidates.add(user);
                heads.add(head);
            }
        }
        if (candidates.isEmpty()) {
            return null;
        }
        // Time counts visits: the candidate at place i is visited at i, i + n, i + 2n… and gains a quantum on each
        // visit, except the user in turn, whose credit for its current visit (at 0) was already given.
        int n = candidates.size();
        int winner = 0;
        long soonest = Long.MAX_VALUE;
        for (int i = 0; i < n; i++) {
            User user = candidates.get(i);
            long missing = heads.get(i).cost - user.credit;
            long quanta = missing <= 0 ? 0 : (missing + quantum - 1) / quantum;
            long at = user.inTurn ? quanta * n : Math.max(0, quanta - 1) * n + i;
            if (at < soonest) {
                soonest = at;
                winner = i;
            }
        }
        for (int i = 0; i < n; i++) {
            User user = candidates.get(i);
            long visits = user.inTurn ? soonest / n : (soonest >= i ? (soonest - i) / n + 1 : 0);
            user.credit += visits * quantum;
        }
        User sender = candidates.get(winner);
        Queued sent = heads.get(winner);
        sender.waiting.remove(sent);
        sender.credit -= sent.cost;
        turnTo(sender);
        return sent;
    }

    /** Makes {@code sender}'s the turn in progress: the users before it had theirs; one left with nothing leaves. */
    private void turnTo(User sender) {
        Iterator<Map.Entry<Long, User>> users = round.entrySet().iterator();
        List<Map.Entry<Long, User>> passed = new ArrayList<>();
        while (users.hasNext()) {
            var entry = users.next();
            if (entry.getValue() == sender) {
                break;
            }
            entry.getValue().inTurn = false;
            passed.add(entry);
            users.remove();
        }
        passed.forEach(entry -> round.put(entry.getKey(), entry.getValue()));
        sender.inTurn = true;
        if (sender.waiting.isEmpty()) {
            round.values().remove(sender);
        }
    }

    @Override
    public void removeIf(Predicate<Queued> ended) {
        round.values().removeIf(user -> {
            user.waiting.removeIf(ended);
            return user.waiting.isEmpty();
        });
    }

    /** How many requests wait, all users together. */
    int size() {
        return round.values().stream().mapToInt(user -> user.waiting.size()).sum();
    }

    /** One user's place in the round. */
    private static final class User {
        final ArrayDeque<Queued> waiting = new ArrayDeque<>();
        /** Tokens this user may still send before its next quantum: the deficit of deficit round robin. */
        long credit;
        /** Whether it is this user's turn, its quantum for it given. */
        boolean inTurn;

        /**
         * The user's oldest request that {@code eligible} accepts. Requests that ended while waiting are dropped on the
         * way: they never become eligible again, and when many end at once (a shutdown, a deadline shared by thousands)
         * scanning past them on every seat made forming batches quadratic in the queue's length.
         */
        Queued first(Predicate<Queued> eligible) {
            for (Iterator<Queued> requests = waiting.iterator(); requests.hasNext(); ) {
                Queued request = requests.next();
                if (request.isDone()) {
                    requests.remove();
                } else if (eligible.test(request)) {
                    return request;
                }
            }
            return null;
        }
    }
}
