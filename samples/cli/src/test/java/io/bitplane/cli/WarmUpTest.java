package io.bitplane.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** When the warm-up before a measurement ends: the work's rate (the JIT's compiling is the JVM's own). */
class WarmUpTest {

    /** A rate that keeps climbing is not yet the one to measure: warmed up to the cap, the floor and then 1 s. */
    @Test
    @Timeout(20)
    void aRisingRateIsWarmedUpToTheCap() {
        long[] calls = new long[1];
        long start = System.nanoTime();
        WarmUp.untilSettled(100_000_000L, 0, nanos -> {
            pause();
            return Math.pow(1.1, ++calls[0]);
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        assertTrue(seconds >= 1.1, seconds + " s");
        assertTrue(calls[0] > 3, calls[0] + " calls");
    }

    /** A rate that stopped rising ends the warm-up after a few windows (the JIT quiet), once past the floor. */
    @Test
    void aFlatRateEndsTheWarmUpAfterTheFloor() {
        long[] calls = new long[1];
        long start = System.nanoTime();
        WarmUp.untilSettled(50_000_000L, 0, nanos -> {
            pause();
            calls[0]++;
            return 100.0;
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        assertTrue(seconds >= 0.05, seconds + " s");
        assertTrue(seconds < 1.0, seconds + " s, " + calls[0] + " calls");
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
