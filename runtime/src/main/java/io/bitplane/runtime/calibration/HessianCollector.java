package io.bitplane.runtime.calibration;

import io.bitplane.format.LlamaTensors;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Accumulates, for every matrix, the second moments of its inputs {@code H = sum_t x_t x_t^T} over the calibration
 * tokens: what GPTQ weighs rounding errors with. Each thread sums into its own matrices (upper triangle only, in
 * doubles: a calibration run adds some hundred thousand products per entry), merged once at the end.
 *
 * <p>Matrices that read the same input share one sum (q, k and v read the attention norm's output; gate and up
 * the feed-forward norm's): it is summed once, on the first of them the decoder calls, and the result hands the
 * same array to each. That saves memory and time in proportion, and callers must not change the arrays in place
 * once per matrix.
 */
final class HessianCollector implements ObservingBackend.InputObserver {

    private static final class Sums {
        final double[] h;
        final int cols;
        long rows;

        Sums(int cols) {
            this.cols = cols;
            this.h = new double[cols * cols];
        }
    }

    private final List<Map<String, Sums>> perThread = new CopyOnWriteArrayList<>();
    private final ThreadLocal<Map<String, Sums>> mine = ThreadLocal.withInitial(() -> {
        Map<String, Sums> m = new HashMap<>();
        perThread.add(m);
        return m;
    });
    private final ThreadLocal<double[]> row = ThreadLocal.withInitial(() -> new double[0]);
    private final java.util.function.Predicate<String> wanted;

    /** Collects for the tensors {@code wanted} accepts. */
    HessianCollector(java.util.function.Predicate<String> wanted) {
        this.wanted = wanted;
    }

    /** {@link #sameInput} by tensor: it is asked at every observed product, and builds strings. */
    private static final java.util.concurrent.ConcurrentHashMap<String, List<String>> SAME_INPUT =
            new java.util.concurrent.ConcurrentHashMap<>();

    /** The matrices reading the same input as {@code tensor}, the one the decoder calls first leading. */
    static List<String> sameInput(String tensor) {
        return SAME_INPUT.computeIfAbsent(tensor, HessianCollector::findSameInput);
    }

    private static List<String> findSameInput(String tensor) {
        for (List<String> kinds : List.of(LlamaTensors.ATTENTION_INPUT_KINDS, LlamaTensors.FFN_INPUT_KINDS)) {
            for (String kind : kinds) {
                String suffix = "." + kind + ".weight";
                if (tensor.startsWith("blk.") && tensor.endsWith(suffix)) {
                    String prefix = tensor.substring(0, tensor.length() - suffix.length());
                    return kinds.stream().map(k -> prefix + "." + k + ".weight").toList();
                }
            }
        }
        return List.of(tensor);
    }

    @Override
    public void observe(String tensor, float[] x, int batch, int cols) {
        List<String> group = sameInput(tensor);
        if (!group.get(0).equals(tensor) || group.stream().noneMatch(wanted)) {
            return;
        }
        Sums s = mine.get().computeIfAbsent(tensor, t -> new Sums(cols));
        if (s.cols != cols) {
            throw new IllegalStateException("tensor " + tensor + ": inputs of " + cols + " and " + s.cols);
        }
        double[] xd = row.get();
        if (xd.length < cols) {
            xd = new double[cols];
            row.set(xd);
        }
        double[] h = s.h;
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < cols; i++) {
                xd[i] = x[b * cols + i];
            }
            for (int i = 0; i < cols; i++) {
                double xi = xd[i];
                if (xi == 0) {
                    continue;
                }
                int base = i * cols;
                for (int j = i; j < cols; j++) {
                    h[base + j] += xi * xd[j];
                }
            }
        }
        s.rows += batch;
    }

    /**
     * The merged, full symmetric matrices by tensor name (for every wanted tensor; matrices reading the same input
     * share one array), each divided by its number of input rows.
     */
    Map<String, double[]> result() {
        Map<String, double[]> out = new HashMap<>();
        Map<String, Long> rows = new HashMap<>();
        for (Map<String, Sums> m : perThread) {
            for (var e : m.entrySet()) {
                double[] acc = out.computeIfAbsent(e.getKey(), k -> new double[e.getValue().h.length]);
                double[] h = e.getValue().h;
                for (int i = 0; i < h.length; i++) {
                    acc[i] += h[i];
                }
                rows.merge(e.getKey(), e.getValue().rows, Long::sum);
            }
        }
        for (var e : out.entrySet()) {
            double[] h = e.getValue();
            int n = (int) Math.round(Math.sqrt(h.length));
            double scale = 1.0 / Math.max(1, rows.get(e.getKey()));
            for (int i = 0; i < n; i++) {
                for (int j = i; j < n; j++) {
                    double v = h[i * n + j] * scale;
                    h[i * n + j] = v;
                    h[j * n + i] = v;
                }
            }
        }
        Map<String, double[]> byTensor = new HashMap<>();
        out.forEach((lead, h) -> sameInput(lead).stream().filter(wanted)
                .forEach(member -> byTensor.put(member, h)));
        return byTensor;
    }
}
