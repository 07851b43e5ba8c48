package io.bitplane.kernels.scalar;

import io.bitplane.format.BpmTensor;
import io.bitplane.format.Dequantizer;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.Weights;

/**
 * The reference backend: every operation in plain Java, in llama2.c's order of arithmetic, on one thread. It is
 * the oracle for every other backend and the fallback that always works. Subclasses override what they speed up.
 */
public class ScalarBackend implements Backend {

    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public String description() {
        return "scalar (reference kernels, one thread)";
    }

    @Override
    public Weights upload(BpmTensor tensor) {
        // The Java kernels index the bytes as the spec says: a short tensor is refused here, by name.
        tensor.requireComplete();
        return new CpuWeights(tensor.spec(), tensor.data());
    }

    @Override
    public Buffer allocate(int floats) {
        return new ArrayBuffer(new float[floats]);
    }

    @Override
    public void embed(Weights table, int row, Buffer out, int outOffset) {
        CpuWeights w = CpuWeights.of(table);
        TensorSpec s = w.spec();
        if (row < 0 || row >= s.rows()) {
            throw new IllegalArgumentException("row " + row + " outside " + s.name() + " (" + s.rows() + " rows)");
        }
        Dequantizer.row(s, w.data(), row, ArrayBuffer.of(out), outOffset);
    }

    @Override
    public void matmul(Weights w, Buffer x, Buffer y, int batch) {
        CpuWeights cw = CpuWeights.of(w);
        checkMatmul(cw.spec(), x, y, batch);
        ScalarMatmul.matmul(cw.spec(), cw.data(), ArrayBuffer.of(x), ArrayBuffer.of(y), batch, 0,
                (int) cw.spec().rows());
    }

    /** Shapes checked once here so that kernels can trust them. */
    public static void checkMatmul(TensorSpec spec, Buffer x, Buffer y, int batch) {
        if (spec.rank() != 2 || batch < 1 || (long) batch * spec.cols() > x.length()
                || (long) batch * spec.rows() > y.length()) {
            throw new IllegalArgumentException("matmul " + spec + " x batch " + batch + ": buffers of "
                    + x.length() + " and " + y.length() + " floats are too small");
        }
    }

    @Override
    public void rmsNorm(Buffer out, Buffer x, Weights gamma, int dim, int batch, float eps) {
        float[] o = ArrayBuffer.of(out);
        float[] in = ArrayBuffer.of(x);
        CpuWeights g = CpuWeights.of(gamma);
        float[] weight = scratch(GAMMA, dim);
        Dequantizer.row(g.spec(), g.data(), 0, weight, 0);
        for (int b = 0; b < batch; b++) {
            rmsNormRow(in, b * dim, weight, dim, eps, o, b * dim);
        }
    }

    /**
     * The reference RMSNorm of one token, llama2.c's arithmetic: {@code out[j] = weight[j] * (r * x[j])} with
     * {@code r = 1 / sqrt(mean x^2 + eps)}; returns r (a training pass keeps it for its backward step).
     */
    public static float rmsNormRow(float[] x, int offset, float[] weight, int dim, float eps, float[] out,
                                   int outOffset) {
        float ss = 0;
        for (int j = 0; j < dim; j++) {
            ss += x[offset + j] * x[offset + j];
        }
        ss /= dim;
        ss += eps;
        ss = 1.0f / (float) Math.sqrt(ss);
        for (int j = 0; j < dim; j++) {
            out[outOffset + j] = weight[j] * (ss * x[offset + j]);
        }
        return ss;
    }

    /** The last rotary table used; models use one head size and theta, so one table serves every call. */
    private volatile RopeTable rope;

    @Override
    public void rope(Buffer v, int batch, int[] positions, int heads, int headSize, float theta,
                     float[] freqFactors) {
        float[] a = ArrayBuffer.of(v);
        int dim = heads * headSize;
        int maxPos = maxPosition(positions, batch);
        RopeTable table = RopeTable.covering(rope, headSize, theta, freqFactors, maxPos);
        rope = table;
        for (int b = 0; b < batch; b++) {
            table.rotate(a, b * dim, dim, positions[b], false);
        }
    }

    @Override
    public void attention(Buffer out, Buffer q, Buffer keys, Buffer values, int[] positions, int batch,
                          AttentionShape s) {
        attendHeads(ArrayBuffer.of(out), ArrayBuffer.of(q), ArrayBuffer.of(keys), ArrayBuffer.of(values), positions,
                s, 0, batch * s.nHeads());
    }

    /**
     * Attention for the (token, head) pairs {@code [from, to)} of a batch, pair i being token {@code i / nHeads},
     * head {@code i % nHeads}. Each pair's arithmetic is independent of the others, so threads may run disjoint
     * ranges and the results do not depend on how the pairs were split.
     */
    protected final void attendHeads(float[] o, float[] qa, float[] k, float[] v, int[] positions, AttentionShape s,
                                     int from, int to) {
        int kvDim = s.kvDim();
        int kvMul = s.nHeads() / s.nKvHeads();
        int hs = s.headSize();
        float norm = (float) Math.sqrt(hs);
        for (int pair = from; pair < to; pair++) {
            int b = pair / s.nHeads();
            int h = pair % s.nHeads();
            int pos = positions[b];
            float[] att = scratch(SCORES, pos + 1);
            int qo = b * s.queryDim() + h * hs;
            int kvo = (h / kvMul) * hs;
            scores(att, qa, qo, k, kvo, kvDim, pos + 1, hs, norm);
            scoresToWeights(att, pos + 1);
            weightedSum(o, qo, att, pos + 1, v, kvo, kvDim, hs);
        }
    }

    /** {@code att[t] = headDot(q[qo..], k[t * stride + ko..]) / norm} for t below count: a head's scores. */
    protected void scores(float[] att, float[] q, int qo, float[] k, int ko, int stride, int count, int n,
                          float norm) {
        for (int t = 0; t < count; t++) {
            att[t] = headDot(q, qo, k, t * stride + ko, n) / norm;
        }
    }

    /** {@code sum_i a[ao + i] b[bo + i]} over n values: one attention score. */
    protected float headDot(float[] a, int ao, float[] b, int bo, int n) {
        float score = 0;
        for (int i = 0; i < n; i++) {
            score += a[ao + i] * b[bo + i];
        }
        return score;
    }

    /** Softmax of the first {@code size} scores, in place. */
    protected void scoresToWeights(float[] att, int size) {
        softmax(att, size);
    }

    /** {@code out[oo + i] = sum_t att[t] v[t * stride + vo + i]} for i below n, t below count. */
    protected void weightedSum(float[] out, int oo, float[] att, int count, float[] v, int vo, int stride, int n) {
        java.util.Arrays.fill(out, oo, oo + n, 0f);
        for (int t = 0; t < count; t++) {
            int at = t * stride + vo;
            float a = att[t];
            for (int i = 0; i < n; i++) {
                out[oo + i] += a * v[at + i];
            }
        }
    }

    private static final ThreadLocal<float[]> GAMMA = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> SCORES = ThreadLocal.withInitial(() -> new float[0]);

    /** The largest of the first {@code batch} positions. */
    protected static int maxPosition(int[] positions, int batch) {
        int max = 0;
        for (int b = 0; b < batch; b++) {
            max = Math.max(max, positions[b]);
        }
        return max;
    }

    /** A per-thread array of at least n floats, so that steady-state calls do not allocate. */
    private static float[] scratch(ThreadLocal<float[]> slot, int n) {
        float[] a = slot.get();
        if (a.length < n) {
            a = new float[Math.max(n, 2 * a.length)];
            slot.set(a);
        }
        return a;
    }

    protected static void softmax(float[] x, int size) {
        float max = x[0];
        for (int i = 1; i < size; i++) {
            if (x[i] > max) {
                max = x[i];
            }
        }
        float sum = 0;
        for (int i = 0; i < size; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < size; i++) {
            x[i] /= sum;
        }
    }

    @Override
    public void swiGlu(Buffer gate, Buffer up, int n) {
        float[] g = ArrayBuffer.of(gate);
        float[] u = ArrayBuffer.of(up);
        for (int i = 0; i < n; i++) {
            float val = g[i];
            val *= (1.0f / (1.0f + (float) Math.exp(-val)));
            g[i] = val * u[i];
        }
    }

    @Override
    public void add(Buffer acc, Buffer x, int n) {
        float[] a = ArrayBuffer.of(acc);
        float[] b = ArrayBuffer.of(x);
        for (int i = 0; i < n; i++) {
            a[i] += b[i];
        }
    }

    @Override
    public void addBias(Buffer acc, Weights bias, int n, int batch) {
        float[] a = ArrayBuffer.of(acc);
        CpuWeights w = CpuWeights.of(bias);
        if (w.spec().encoding().quantized || w.spec().cols() < n || (long) n * batch > a.length) {
            throw new IllegalArgumentException("addBias: " + w.spec() + " is not a float bias of " + n
                    + " values for " + batch + " rows of a buffer of " + a.length);
        }
        float[] b = scratch(GAMMA, n);
        Dequantizer.row(w.spec(), w.data(), 0, b, 0);
        for (int r = 0; r < batch; r++) {
            for (int i = 0; i < n; i++) {
                a[r * n + i] += b[i];
            }
        }
    }

    @Override
    public void copy(Buffer src, int srcOffset, Buffer dst, int dstOffset, int n) {
        System.arraycopy(ArrayBuffer.of(src), srcOffset, ArrayBuffer.of(dst), dstOffset, n);
    }

    @Override
    public void read(Buffer src, int srcOffset, float[] dst, int dstOffset, int n) {
        System.arraycopy(ArrayBuffer.of(src), srcOffset, dst, dstOffset, n);
    }

    @Override
    public void write(float[] src, int srcOffset, Buffer dst, int dstOffset, int n) {
        System.arraycopy(src, srcOffset, ArrayBuffer.of(dst), dstOffset, n);
    }
}
