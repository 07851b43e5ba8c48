package io.bitplane.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.HashMap;
import java.util.Map;
import java.util.function.LongSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * When the warm-up before a measurement ends: the work's rate and the JIT's compiling (here a stand-in clock); and
 * how many calls bring a method to C2.
 */
class WarmUpTest {
    /** The JIT as done: its compiling time does not move. */
    private static final LongSupplier JIT_DONE = () -> 42;

    /** A rate that keeps climbing is not yet the one to measure: warmed up to the cap, the floor and then 1 s. */
    @Test
    @Timeout(20)
    void aRisingRateIsWarmedUpToTheCap() {
        long[] calls = new long[1];
        double seconds = secondsOf(() -> WarmUp.untilSettled(100_000_000L, 0, nanos -> {
            pause();
            return Math.pow(1.1, ++calls[0]);
        }, JIT_DONE));
        assertTrue(seconds >= 1.1, seconds + " s");
        assertTrue(calls[0] > 3, calls[0] + " calls");
    }

    /** A rate that stopped rising ends the warm-up three windows later, once past the floor. */
    @Test
    void aFlatRateEndsTheWarmUpAfterTheFloor() {
        long[] calls = new long[1];
        double seconds = secondsOf(() -> WarmUp.untilSettled(50_000_000L, 0, nanos -> {
            pause();
            calls[0]++;
            return 100.0;
        }, JIT_DONE));
        assertTrue(seconds >= 0.05, seconds + " s");
        assertTrue(seconds < 1.0, seconds + " s, " + calls[0] + " calls");
    }

    /** While the JIT keeps compiling, a flat rate is not settled: warmed up to the cap. */
    @Test
    @Timeout(20)
    void aJitStillCompilingKeepsTheWarmUpGoing() {
        long[] compiled = new long[1];
        double seconds = secondsOf(() -> WarmUp.untilSettled(0, 0, nanos -> {
            pause();
            return 100.0;
        }, () -> compiled[0]++));
        assertTrue(seconds >= 1.0, seconds + " s");
    }

    /** The calls that bring a method to C2: the tiered threshold (or the untiered one) times the scaling. */
    @Test
    void callsToC2AreTheJitsThresholdTimesItsScaling() {
        Map<String, String> options = new HashMap<>(Map.of("TieredCompilation", "true",
                "Tier4InvocationThreshold", "5000", "CompileThreshold", "10000", "CompileThresholdScaling", "0.1"));
        assertEquals(500, WarmUp.callsToC2(options::get));
        options.put("TieredCompilation", "false");
        options.put("CompileThresholdScaling", "1.0");
        assertEquals(10000, WarmUp.callsToC2(options::get));
        options.put("CompileThresholdScaling", "0.00001");
        assertEquals(1, WarmUp.callsToC2(options::get), "at least one call");
        options.remove("CompileThreshold");
        assertEquals(5000, WarmUp.callsToC2(options::get), "an option the JVM does not have: HotSpot's default");
        assertTrue(WarmUp.callsToC2() >= 1, "this JVM's");
    }

    private static double secondsOf(Runnable work) {
        long start = System.nanoTime();
        work.run();
        return (System.nanoTime() - start) / 1e9;
    }

    /** A window of work, shorter than the warm-up's own. */
    private static void pause() {
        try {
            Thread.sleep(10);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }
}
