package dev.batchgateway.completion;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Predicate;

/**
 * Fair share between users: deficit round robin (Shreedhar and Varghese, 1995) by user, each request weighing its
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
 *
 * <p>A seat costs about as many looks at users as the turns that pass, not one per waiting user: the users are a ring,
 * and a seat looks at them in turn only until one can send within the current round, since nobody after it could come
 * first (only a seat that nobody can take in this round looks at everyone). Users left out who hold requests that ended
 * while waiting are looked at all the same, so the ended requests are dropped, and users leave, when they always were.
 */
final class FairShare implements LanePolicy {

    /**
     * One token a turn, the finest share: a larger quantum lets a user with many small requests send a quantum's worth
     * of them on each turn (with 256, ten requests of 25 tokens: more than a batch) before a newcomer's first.
     */
    static final long QUANTUM = 1;

    private final long quantum;
    /** Users with requests waiting, by id; {@link #round} orders them. */
    private final HashMap<Long, User> users = new HashMap<>();
    /**
     * Users with requests waiting, in round order, a ring: the one at {@code front} is the one whose turn it is. A turn
     * passing on moves the users it passes from the front to the back, a pointer each.
     */
    private User[] round = new User[16];
    private int front;
    private int inRound;
    /** The candidates of one {@link #next}, in round order: kept between calls to spare the allocation. */
    private User[] candidates = new User[16];
    /** Counts the calls of {@link #next}: a user looked at in the current one has it as its {@link User#lookedAt}. */
    private long call;
    /** Requests that ended before they were sent, as the lane tells it (any thread). */
    private final ConcurrentLinkedQueue<Queued> told = new ConcurrentLinkedQueue<>();
    /** Users in the round who may hold a request that ended while it waited. */
    private final ArrayList<User> holdingEnded = new ArrayList<>();

    FairShare() {
        this(QUANTUM);
    }

    FairShare(long quantum) {
        if (quantum < 1) {
            throw new IllegalArgumentException("the quantum is at least one token, was " + quantum);
        }
        this.quantum = quantum;
    }

    @Override
    public void add(Queued request) {
        User user = users.get(request.userId());
        if (user == null) {
            user = new User(request.userId());
            users.put(request.userId(), user);
            join(user);
        }
        user.waiting.addLast(request);
    }

    @Override
    public void ended(Queued request) {
        told.add(request);
    }

    @Override
    public Queued next(Predicate<Queued> eligible) {
        // Time counts visits: the candidate at place i of n is visited at i, i + n, i + 2n… and gains a quantum on each
        // visit, except the user in turn, whose credit for its current visit (at 0) was already given. The first to
        // afford its head, at q * n + i, is the one with the fewest whole rounds q, the first in round order among
        // them: a candidate who can send within this round (q = 0) wins against all after it, so they are not looked at.
        hearEnded();
        call++;
        int n = 0;
        int winner = -1;
        int winnerPlace = -1;
        long rounds = Long.MAX_VALUE;
        Queued sent = null;
        for (int place = 0; place < inRound; place++) {
            User user = round[(front + place) & (round.length - 1)];
            user.lookedAt = call;
            Queued head = user.first(eligible);
            if (head == null) {
                continue;
            }
            long missing = head.cost - user.credit;
            long quanta = missing <= 0 ? 0 : (missing + quantum - 1) / quantum;
            long q = user.inTurn ? quanta : Math.max(0, quanta - 1);
            if (n == candidates.length) {
                candidates = Arrays.copyOf(candidates, 2 * n);
            }
            candidates[n] = user;
            if (q < rounds) {
                rounds = q;
                winner = n;
                winnerPlace = place;
                sent = head;
            }
            n++;
            if (q == 0) {
                break;
            }
        }
        // Looking at a user drops its ended requests before its first eligible one; a user left out above (after the
        // winner) who holds some drops them as well, or it could stay in the round with nothing but ended requests
        for (User user : holdingEnded) {
            if (user.lookedAt != call && user.inRound) {
                user.first(eligible);
            }
        }
        if (sent == null) {
            forgetEndedDropped();
            return null;
        }
        // every candidate is visited in the whole rounds before the winner's visit; those up to it once more in its round
        for (int i = 0; i < n; i++) {
            User user = candidates[i];
            long visits = rounds + (i <= winner && !user.inTurn ? 1 : 0);
            user.credit += visits * quantum;
            candidates[i] = null;
        }
        User sender = round[(front + winnerPlace) & (round.length - 1)];
        sender.waiting.remove(sent);
        sender.credit -= sent.cost;
        turnTo(winnerPlace);
        forgetEndedDropped();
        return sent;
    }

    /** Takes in the users whose requests ended before they were sent since the last look. */
    private void hearEnded() {
        for (Queued request; (request = told.poll()) != null; ) {
            User user = users.get(request.userId());
            if (user != null && !user.holdsEnded) {
                user.holdsEnded = true;
                holdingEnded.add(user);
            }
        }
    }

    /** Forgets the users who hold no ended request any more (they dropped them, sent the rest, or left). */
    private void forgetEndedDropped() {
        holdingEnded.removeIf(user -> {
            boolean holds = user.inRound && user.waiting.stream().anyMatch(Queued::isDone);
            user.holdsEnded = holds;
            return !holds;
        });
    }

    /**
     * Makes the turn of the user at {@code place} in the round the turn in progress: the users before it had theirs and
     * go to the back; one left with nothing leaves.
     */
    private void turnTo(int place) {
        int mask = round.length - 1;
        for (int i = 0; i < place; i++) {
            User passed = round[front];
            passed.inTurn = false;
            round[front] = null;
            round[(front + inRound) & mask] = passed;
            front = (front + 1) & mask;
        }
        User sender = round[front];
        sender.inTurn = true;
        if (sender.waiting.isEmpty()) {
            round[front] = null;
            front = (front + 1) & mask;
            inRound--;
            leave(sender);
        }
    }

    private void join(User user) {
        user.inRound = true;
        if (inRound == round.length) {
            User[] larger = new User[2 * round.length];
            for (int place = 0; place < inRound; place++) {
                larger[place] = round[(front + place) & (round.length - 1)];
            }
            round = larger;
            front = 0;
        }
        round[(front + inRound) & (round.length - 1)] = user;
        inRound++;
    }

    @Override
    public void removeIf(Predicate<Queued> ended) {
        int kept = 0;
        for (int place = 0; place < inRound; place++) {
            int at = (front + place) & (round.length - 1);
            User user = round[at];
            round[at] = null;
            user.waiting.removeIf(ended);
            if (user.waiting.isEmpty()) {
                leave(user);
            } else {
                round[(front + kept++) & (round.length - 1)] = user;
            }
        }
        inRound = kept;
        hearEnded();
        forgetEndedDropped();
    }

    private void leave(User user) {
        users.remove(user.id);
        user.inRound = false;
    }

    /** How many requests wait, all users together. */
    int size() {
        return users.values().stream().mapToInt(user -> user.waiting.size()).sum();
    }

    /** One user's place in the round. */
    private static final class User {
        final long id;
        final ArrayDeque<Queued> waiting = new ArrayDeque<>();
        /** Tokens this user may still send before its next quantum: the deficit of deficit round robin. */
        long credit;
        /** Whether it is this user's turn, its quantum for it given. */
        boolean inTurn;
        boolean inRound;
        /** Whether it is among the fair share's users who may hold an ended request. */
        boolean holdsEnded;
        /** The last call of {@link #next} that looked at this user's requests. */
        long lookedAt;

        User(long id) {
            this.id = id;
        }

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
