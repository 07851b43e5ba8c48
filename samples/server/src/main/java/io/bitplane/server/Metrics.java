package io.bitplane.server;

import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntSupplier;

/**
 * The server's counters, gauges and latency histograms, written in Prometheus' text exposition format
 * (version 0.0.4) for {@code GET /metrics}. Lock-free: request threads and the scheduler update them freely.
 */
final class Metrics {
    /** Histogram bucket bounds in seconds, shared by both latency histograms. */
    private static final double[] BOUNDS = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
            30};

    private final Map<String, LongAdder> requests = new ConcurrentHashMap<>();
    private final LongAdder generatedTokens = new LongAdder();
    private final LongAdder promptTokens = new LongAdder();
    private final LongAdder cachedPromptTokens = new LongAdder();
    private final Histogram timeToFirstToken = new Histogram();
    private final Histogram tokenLatency = new Histogram();
    private final IntSupplier queueDepth;
    private final IntSupplier activeSequences;

    Metrics(IntSupplier queueDepth, IntSupplier activeSequences) {
        this.queueDepth = queueDepth;
        this.activeSequences = activeSequences;
    }

    private static final class Histogram {
        final AtomicLongArray counts = new AtomicLongArray(BOUNDS.length + 1);
        final LongAdder sumNanos = new LongAdder();

        void observe(long nanos) {
            double seconds = nanos / 1e9;
            int i = 0;
            while (i < BOUNDS.length && seconds > BOUNDS[i]) {
                i++;
            }
            counts.incrementAndGet(i);
            sumNanos.add(nanos);
        }

        void write(StringBuilder out, String name, String help) {
            out.append("# HELP ").append(name).append(' ').append(help).append('\n');
            out.append("# TYPE ").append(name).append(" histogram\n");
            long cumulative = 0;
            for (int i = 0; i < BOUNDS.length; i++) {
                cumulative += counts.get(i);
                out.append(name).append("_bucket{le=\"").append(BOUNDS[i]).append("\"} ").append(cumulative)
                        .append('\n');
            }
            cumulative += counts.get(BOUNDS.length);
            out.append(name).append("_bucket{le=\"+Inf\"} ").append(cumulative).append('\n');
            out.append(name).append("_sum ").append(String.format(Locale.ROOT, "%.6f", sumNanos.sum() / 1e9))
                    .append('\n');
            out.append(name).append("_count ").append(cumulative).append('\n');
        }
    }

    void request(String endpoint, int status) {
        requests.computeIfAbsent(endpoint + "\u0000" + status, k -> new LongAdder()).increment();
    }

    /** A finished request's prompt: {@code n} tokens, {@code cached} of them found in a session's cache. */
    void promptTokens(int n, int cached) {
        cachedPromptTokens.add(cached);
        promptTokens.add(n);
    }

    void token() {
        generatedTokens.increment();
    }

    void timeToFirstToken(long nanos) {
        timeToFirstToken.observe(nanos);
    }

    void tokenLatency(long nanos) {
        tokenLatency.observe(nanos);
    }

    String exposition() {
        StringBuilder out = new StringBuilder(4096);
        out.append("# HELP bitplane_requests_total HTTP requests by endpoint and status.\n");
        out.append("# TYPE bitplane_requests_total counter\n");
        requests.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
            String[] key = e.getKey().split("\u0000");
            out.append("bitplane_requests_total{endpoint=\"").append(key[0]).append("\",status=\"").append(key[1])
                    .append("\"} ").append(e.getValue().sum()).append('\n');
        });
        counter(out, "bitplane_generated_tokens_total", "Tokens generated.", generatedTokens.sum());
        counter(out, "bitplane_prompt_tokens_total", "Prompt tokens processed.", promptTokens.sum());
        counter(out, "bitplane_prompt_tokens_cached_total", "Prompt tokens found in a session's cache (not "
                + "computed again).", cachedPromptTokens.sum());
        gauge(out, "bitplane_queue_depth", "Requests waiting for a sequence.", queueDepth.getAsInt());
        gauge(out, "bitplane_active_sequences", "Sequences decoding now.", activeSequences.getAsInt());
        gauge(out, "bitplane_jvm_threads", "Live JVM threads.",
                java.lang.management.ManagementFactory.getThreadMXBean().getThreadCount());
        gauge(out, "bitplane_jvm_heap_used_bytes", "Java heap in use.",
                java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
        gauge(out, "bitplane_jvm_heap_after_gc_bytes", "Heap in use after the last collection (what is kept).",
                heapAfterGc());
        gauge(out, "process_resident_memory_bytes", "Resident set size of the server process.", residentBytes());
        timeToFirstToken.write(out, "bitplane_time_to_first_token_seconds",
                "From request accepted to first generated token.");
        tokenLatency.write(out, "bitplane_token_latency_seconds", "Between consecutive generated tokens.");
        return out.toString();
    }

    /** Sum over the heap pools of their use after the last collection: grows only if something is kept. */
    private static long heapAfterGc() {
        long sum = 0;
        for (var pool : java.lang.management.ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == java.lang.management.MemoryType.HEAP && pool.getCollectionUsage() != null) {
                sum += pool.getCollectionUsage().getUsed();
            }
        }
        return sum;
    }

    /** VmRSS from /proc (Linux); -1 elsewhere. */
    private static long residentBytes() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux: unknown
        }
        return -1;
    }

    private static void counter(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" counter\n").append(name).append(' ').append(value).append('\n');
    }

    private static void gauge(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" gauge\n").append(name).append(' ').append(value).append('\n');
    }
}
