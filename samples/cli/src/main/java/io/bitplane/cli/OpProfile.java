package io.bitplane.cli;

import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.ForwardingBackend;
import io.bitplane.kernels.Weights;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Times every op a backend runs, by kind ({@code attention}, {@code rms_norm}, ...) and, for matrix products, by
 * tensor with the layer left out ({@code blk.N.ffn_up.weight}), and counts the weight bytes the products read.
 * A CPU backend's ops end before they return, so their times are the ops' own; an asynchronous backend (OpenCL)
 * returns once an op is queued, so its times say little until a read waits for the queue.
 */
final class OpProfile extends ForwardingBackend {
    /** One row of the profile: the calls, time and weight bytes of one op kind or tensor. */
    static final class Op {
        final String name;
        long calls;
        long nanos;
        long weightBytes;

        Op(String name) {
            this.name = name;
        }
    }

    /** A layer number inside a tensor name: blk.3.ffn_up.weight. */
    private static final Pattern LAYER = Pattern.compile("\\.\\d+\\.");

    private final Map<String, Op> ops = new LinkedHashMap<>();
    private final Map<Weights, Op> products = new IdentityHashMap<>();
    private final Map<Weights[], Op> jobs = new IdentityHashMap<>();
    private boolean timing;

    OpProfile(Backend inner) {
        super(inner);
    }

    /** Counts and times from now on, from zero. */
    void start() {
        ops.clear();
        products.clear();
        jobs.clear();
        timing = true;
    }

    /** Stops counting; what was counted stays readable. */
    void stop() {
        timing = false;
    }

    /** The ops so far, longest first. */
    List<Op> ops() {
        List<Op> list = new ArrayList<>(ops.values());
        list.sort(Comparator.comparingLong((Op o) -> o.nanos).reversed());
        return list;
    }

    /** Weight bytes the matrix products have read so far. */
    long weightBytes() {
        return ops.values().stream().mapToLong(o -> o.weightBytes).sum();
    }

    private Op op(String name) {
        return ops.computeIfAbsent(name, Op::new);
    }

    /** Runs {@code work}, timing it as {@code op} between {@link #start} and {@link #stop}. */
    private void timed(String op, Runnable work) {
        if (!timing) {
            work.run(); // untimed: the clock is read only between start() and stop()
            return;
        }
        long t0 = System.nanoTime();
        work.run();
        Op o = op(op);
        o.nanos += System.nanoTime() - t0;
        o.calls++;
    }

    @Override
    public void matmul(Weights w, Buffer x, Buffer y, int batch) {
        if (!timing) {
            inner.matmul(w, x, y, batch);
            return;
        }
        long t0 = System.nanoTime();
        inner.matmul(w, x, y, batch);
        Op o = products.computeIfAbsent(w, k -> op("matmul " + LAYER.matcher(k.spec().name()).replaceAll(".N.")));
        o.nanos += System.nanoTime() - t0;
        o.calls++;
        o.weightBytes += w.spec().byteLength();
    }

    /** Products of one input run as one job (q, k and v, say): one row, named by its tensors. */
    @Override
    public void matmuls(Weights[] ws, Buffer x, Buffer[] ys, int batch) {
        if (!timing) {
            inner.matmuls(ws, x, ys, batch);
            return;
        }
        long t0 = System.nanoTime();
        inner.matmuls(ws, x, ys, batch);
        Op o = jobs.computeIfAbsent(ws, k -> op("matmul " + jointName(k)));
        o.nanos += System.nanoTime() - t0;
        o.calls++;
        for (Weights w : ws) {
            o.weightBytes += w.spec().byteLength();
        }
    }

    /**
     * The tensors of one job, layer left out, their common start and end said once: blk.N.{attn_q,attn_k}.weight
     * (so that a row of the profile stays one line).
     */
    static String jointName(Weights[] ws) {
        List<String[]> names = Arrays.stream(ws)
                .map(w -> LAYER.matcher(w.spec().name()).replaceAll(".N.").split("\\.", -1)).toList();
        String[] first = names.get(0);
        if (names.size() == 1) {
            return String.join(".", first);
        }
        int lead = first.length - 1; // parts every name starts with (each keeps at least one of its own)
        for (String[] n : names) {
            int l = 0;
            while (l < Math.min(lead, n.length - 1) && n[l].equals(first[l])) {
                l++;
            }
            lead = l;
        }
        int trail = first.length - 1 - lead; // parts every name ends with, after those
        for (String[] n : names) {
            int t = 0;
            while (t < Math.min(trail, n.length - 1 - lead)
                    && n[n.length - 1 - t].equals(first[first.length - 1 - t])) {
                t++;
            }
            trail = t;
        }
        List<String> middles = new ArrayList<>();
        for (String[] n : names) {
            middles.add(String.join(".", Arrays.asList(n).subList(lead, n.length - trail)));
        }
        String head = String.join(".", Arrays.asList(first).subList(0, lead));
        String tail = String.join(".", Arrays.asList(first).subList(first.length - trail, first.length));
        return (head.isEmpty() ? "" : head + ".") + "{" + String.join(",", middles) + "}"
                + (tail.isEmpty() ? "" : "." + tail);
    }

    @Override
    public void embed(Weights table, int row, Buffer out, int outOffset) {
        timed("embed", () -> inner.embed(table, row, out, outOffset));
    }

    @Override
    public void rmsNorm(Buffer out, Buffer x, Weights gamma, int dim, int batch, float eps) {
        timed("rms_norm", () -> inner.rmsNorm(out, x, gamma, dim, batch, eps));
    }

    @Override
    public void rope(Buffer v, int batch, int[] positions, int heads, int headSize, float theta,
                     float[] freqFactors) {
        timed("rope", () -> inner.rope(v, batch, positions, heads, headSize, theta, freqFactors));
    }

    @Override
    public void attention(Buffer out, Buffer q, Buffer keys, Buffer values, int[] positions, int batch,
                          AttentionShape s) {
        timed("attention", () -> inner.attention(out, q, keys, values, positions, batch, s));
    }

    @Override
    public boolean attentionOfRuns(Buffer out, Buffer q, Buffer[] keys, Buffer[] values, int[] positions,
                                   int[] runStarts, int runs, AttentionShape s) {
        boolean[] done = new boolean[1];
        timed("attention", () -> done[0] = inner.attentionOfRuns(out, q, keys, values, positions, runStarts, runs, s));
        return done[0];
    }

    @Override
    public void swiGlu(Buffer gate, Buffer up, int n) {
        timed("swiglu", () -> inner.swiGlu(gate, up, n));
    }

    @Override
    public void add(Buffer acc, Buffer x, int n) {
        timed("add", () -> inner.add(acc, x, n));
    }

    @Override
    public void addBias(Buffer acc, Weights bias, int n, int batch) {
        timed("bias", () -> inner.addBias(acc, bias, n, batch));
    }

    @Override
    public void copy(Buffer src, int srcOffset, Buffer dst, int dstOffset, int n) {
        timed("copy", () -> inner.copy(src, srcOffset, dst, dstOffset, n));
    }

    @Override
    public void read(Buffer src, int srcOffset, float[] dst, int dstOffset, int n) {
        timed("read", () -> inner.read(src, srcOffset, dst, dstOffset, n));
    }

    @Override
    public void write(float[] src, int srcOffset, Buffer dst, int dstOffset, int n) {
        timed("write", () -> inner.write(src, srcOffset, dst, dstOffset, n));
    }
}
