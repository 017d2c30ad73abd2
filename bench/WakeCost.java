import com.sun.management.OperatingSystemMXBean;
import java.lang.management.ManagementFactory;
import java.util.concurrent.locks.LockSupport;

/**
 * What one thread hand-off costs on this machine: a thread that sleeps 1 ms (so that the cores go idle, as they do at
 * light load) then wakes another thread that was parked, which parks again; the process's CPU time per hand-off, less
 * that of the sleep alone, after a warm-up. About 12 s. A request at light load is a chain of such hand-offs
 * (docs/performance.md, light load).
 *
 *   java bench/WakeCost.java            # platform threads
 *   java bench/WakeCost.java virtual    # virtual threads
 */
public class WakeCost {

    private static final int WARM_UP = 1_000;
    private static final int HAND_OFFS = 5_000;
    /** Hand-offs given so far: only the main thread writes it. */
    private static volatile int given;

    public static void main(String[] args) throws InterruptedException {
        boolean virtual = args.length > 0 && args[0].equals("virtual");
        Thread woken = (virtual ? Thread.ofVirtual() : Thread.ofPlatform()).start(() -> {
            for (int taken = 0; taken < WARM_UP + HAND_OFFS; taken++) {
                while (given <= taken) {
                    LockSupport.park();
                }
            }
        });
        handOff(woken, WARM_UP);
        long start = cpuNanos();
        handOff(woken, HAND_OFFS);
        long handOffs = cpuNanos() - start;
        woken.join();
        start = cpuNanos();
        for (int i = 0; i < HAND_OFFS; i++) {
            Thread.sleep(1);
        }
        long sleeps = cpuNanos() - start;
        System.out.printf("%s threads: %.1f µs of CPU a hand-off (%.1f µs with the 1 ms sleep, %.1f µs the sleep alone)%n",
                virtual ? "virtual" : "platform", (handOffs - sleeps) / 1e3 / HAND_OFFS, handOffs / 1e3 / HAND_OFFS,
                sleeps / 1e3 / HAND_OFFS);
    }

    private static void handOff(Thread woken, int times) throws InterruptedException {
        for (int i = 0; i < times; i++) {
            Thread.sleep(1);
            given = given + 1;
            LockSupport.unpark(woken);
        }
    }

    private static long cpuNanos() {
        return ManagementFactory.getPlatformMXBean(OperatingSystemMXBean.class).getProcessCpuTime();
    }
}
