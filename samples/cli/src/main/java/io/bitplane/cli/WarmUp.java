package io.bitplane.cli;

import com.sun.management.HotSpotDiagnosticMXBean;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.util.function.LongSupplier;
import java.util.function.LongToDoubleFunction;
import java.util.function.UnaryOperator;

/**
 * Runs a benchmark's work untimed until the JIT is done with it: {@link #SETTLED_WINDOWS} windows of 0.2 s or more
 * in a row in which nothing was compiled and the rate did not beat the best before it by 3% (at least a floor; at
 * most four times the timed span after it, within 1-10 s, so that a quick run stays quick).
 * <p>
 * Why not a fixed time or the first window that did not rise: a large product's first calls run the kernel as the
 * JIT first compiled it, replaced in the middle of a loop (on-stack replacement), and its rate dips and rests on the
 * way up before the kernel's own compilation arrives (TERNARY x INT8 4096 x 14336, G weights/s a quarter second: 0,
 * 1, 0, 21, 52, 106, 111, 121; or 90, 108, 89, 84, 106, 100, 112, 97, 101, 124, 171). Stopping at the first window
 * that did not rise timed that climb: `bitplane bench` measured those ternary planes at 48-148 from one run to the
 * next, where a process that keeps calling them settles at 115-175; waiting for the JIT, 100-168 in the machine's
 * slower and faster minutes, 67-86% of the roofline measured beside it. (A fixed 0.3 x --seconds before that left
 * BINARY x INT8 with -XX:UseAVX=2 at 61 G weights/s, 116 once compiled.)
 */
final class WarmUp {
    private WarmUp() {
    }

    private static final long WINDOW_NANOS = 200_000_000L;
    private static final long MIN_CAP_NANOS = 1_000_000_000L;
    private static final long MAX_CAP_NANOS = 10_000_000_000L;
    /** Windows in a row without a compilation or a new best rate that end the warm-up. */
    private static final int SETTLED_WINDOWS = 3;

    /**
     * Calls {@code rateOver} (runs the work for at least the nanoseconds given, returns its rate) for at least
     * {@code floorNanos} and until settled, before a measurement of {@code timedNanos}.
     */
    static void untilSettled(long floorNanos, long timedNanos, LongToDoubleFunction rateOver) {
        untilSettled(floorNanos, timedNanos, rateOver, WarmUp::compilationMillis);
    }

    /** {@link #untilSettled(long, long, LongToDoubleFunction)} with the JIT's compiling time from {@code jit}. */
    static void untilSettled(long floorNanos, long timedNanos, LongToDoubleFunction rateOver, LongSupplier jit) {
        long cap = Math.clamp(4 * timedNanos, MIN_CAP_NANOS, MAX_CAP_NANOS);
        long start = System.nanoTime();
        double best = 0;
        int settled = 0;
        long compiled = jit.getAsLong();
        while ((settled < SETTLED_WINDOWS || System.nanoTime() - start < floorNanos)
                && System.nanoTime() - start <= floorNanos + cap) {
            double rate = rateOver.applyAsDouble(WINDOW_NANOS);
            long nowCompiled = jit.getAsLong();
            settled = rate > best * 1.03 || nowCompiled != compiled ? 0 : settled + 1;
            best = Math.max(best, rate);
            compiled = nowCompiled;
        }
    }

    /** C2's default call count for a method without loops (HotSpot's Tier4InvocationThreshold). */
    private static final long DEFAULT_C2_CALLS = 5000;

    /**
     * How many calls bring a method without loops to the optimizing compiler (C2) in this JVM: HotSpot's
     * Tier4InvocationThreshold (CompileThreshold without tiers) times CompileThresholdScaling, or 5,000 where the
     * JVM does not say. A method called a few times a unit of work gets there late, while the rate looks settled:
     * work is to run that many calls before {@link #untilSettled} watches the JIT.
     */
    static long callsToC2() {
        try {
            HotSpotDiagnosticMXBean vm = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            return callsToC2(name -> vm.getVMOption(name).getValue());
        } catch (RuntimeException e) { // not HotSpot
            return DEFAULT_C2_CALLS;
        }
    }

    /** {@link #callsToC2()} from the JVM options that {@code option} gives (a name to its value). */
    static long callsToC2(UnaryOperator<String> option) {
        try {
            boolean tiered = Boolean.parseBoolean(option.apply("TieredCompilation"));
            long calls = Long.parseLong(option.apply(tiered ? "Tier4InvocationThreshold" : "CompileThreshold"));
            double scaling = Double.parseDouble(option.apply("CompileThresholdScaling"));
            return Math.max(1, (long) (calls * scaling));
        } catch (RuntimeException e) { // an option this JVM no longer has
            return DEFAULT_C2_CALLS;
        }
    }

    /** The JIT's compiling time so far, or 0 where the JVM does not say (then the rate alone decides). */
    private static long compilationMillis() {
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        return jit != null && jit.isCompilationTimeMonitoringSupported() ? jit.getTotalCompilationTime() : 0;
    }
}
