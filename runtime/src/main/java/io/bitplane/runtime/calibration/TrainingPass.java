package io.bitplane.runtime.calibration;

import io.bitplane.format.ModelConfig;
import io.bitplane.format.ActivationHint;
import io.bitplane.kernels.ActivationQuantizer;
import io.bitplane.kernels.FloatRows;
import io.bitplane.kernels.scalar.RopeTable;
import io.bitplane.kernels.scalar.ScalarBackend;

import java.util.Arrays;

import static io.bitplane.runtime.calibration.TrainingWeights.DOWN;
import static io.bitplane.runtime.calibration.TrainingWeights.GATE;
import static io.bitplane.runtime.calibration.TrainingWeights.K;
import static io.bitplane.runtime.calibration.TrainingWeights.O;
import static io.bitplane.runtime.calibration.TrainingWeights.Q;
import static io.bitplane.runtime.calibration.TrainingWeights.UP;
import static io.bitplane.runtime.calibration.TrainingWeights.V;

/**
 * The Llama forward pass over one whole sequence, in float arrays, keeping every activation, and its backward pass:
 * the gradients of a loss on the logits with respect to every matrix and norm of {@link TrainingWeights}. Used by
 * distillation, which needs gradients; decoding never comes here. The arithmetic is the runtime's ({@code Decoder}
 * with the scalar backend): RMSNorm, the same rotary table, grouped-query causal attention, SwiGLU, and per-token
 * INT8 quantization or binarization of the inputs of matrices marked {@code roundedInputs} (the rounding is passed
 * straight through by the backward pass). Products go through {@link FloatRows} (vectors where the Vector API runs).
 *
 * <p>Layout: every activation is {@code [T][width]} row-major, T the sequence length; attention probabilities are
 * {@code [head][t][u]} (u &lt;= t used). One instance per thread; buffers grow with the longest
 * sequence seen.
 */
final class TrainingPass {
    private final ModelConfig c;
    private final int layers;
    /** Below this fraction of a token's mean |x|, a value binarizes as zero does (+1); see {@link #round}. */
    private static final float BINARY_ZERO = 1e-5f;

    private final RopeTable rope;
    private final FloatRows rowsMath = FloatRows.get();
    private int capacity;

    // Per layer: the residual stream entering it (index L: after the last layer), the inverse RMS of each norm,
    // the normed inputs (and their INT8 roundings), q and k after rotary, v, attention, SwiGLU.
    private float[][] resid;
    private float[][] mid;
    private float[][] attnInv;
    private float[][] ffnInv;
    private float[][] attnIn;
    private float[][] attnInQ;
    private float[][] q;
    private float[][] k;
    private float[][] v;
    private float[][] kT;
    private float[][] vT;
    private float[][] probs;
    private float[][] attnOut;
    private float[][] attnOutQ;
    private float[][] ffnIn;
    private float[][] ffnInQ;
    private float[][] gate;
    private float[][] up;
    private float[][] act;
    private float[][] sig;
    private float[][] actQ;
    private float[] outInv;
    private float[] outIn;
    private float[] outInQ;
    private float[] logits;
    private int[] tokens;
    private int length;

    // Backward scratch.
    private float[] dResid;
    private float[] dNormed;
    private float[] dAttnOut;
    private float[] dq;
    private float[] dk;
    private float[] dv;
    private float[] dkT;
    private float[] dvT;
    private float[] dGate;
    private float[] dUp;
    private float[] dScores;
    private float[] tmp;
    /** INT8 codes of one token (the reference quantizer's output), for {@link #round}. */
    private byte[] codes;

    TrainingPass(ModelConfig c) {
        this.c = c;
        this.layers = c.nLayers();
        this.rope = new RopeTable(c.headSize(), c.ropeTheta(), c.ropeFreqFactors(),
                Math.max(1, c.contextLength()));
    }

    /** The logits of positions {@code 0 .. T-2} ([T-1][vocab]) after the last {@link #forward}. */
    float[] logits() {
        return logits;
    }

    /**
     * Runs {@code tokens} (positions 0 .. T-1, T &gt;= 2) and computes the logits of every position but the last
     * (each predicts the next token), keeping what {@link #backward} needs.
     */
    void forward(TrainingWeights w, int[] tokens) {
        int n = tokens.length;
        if (n < 2 || n > c.contextLength()) {
            throw new IllegalArgumentException("a training sequence needs 2 to " + c.contextLength() + " tokens, not "
                    + n);
        }
        ensure(n);
        this.tokens = tokens;
        this.length = n;
        int dim = c.dim();
        int hidden = c.hiddenDim();
        float[] table = w.matrices[TrainingWeights.embedding(c)];
        for (int t = 0; t < n; t++) {
            System.arraycopy(table, tokens[t] * dim, resid[0], t * dim, dim);
        }
        for (int l = 0; l < layers; l++) {
            rmsNorm(resid[l], w.norms[2 * l], attnIn[l], attnInv[l], n);
            int mq = TrainingWeights.matrix(l, Q);
            round(w, attnIn[l], attnInQ[l], n, dim);
            product(input(w, mq, attnIn[l], attnInQ[l]), n, w, mq, q[l]);
            product(input(w, mq + 1, attnIn[l], attnInQ[l]), n, w, mq + 1, k[l]);
            product(input(w, mq + 2, attnIn[l], attnInQ[l]), n, w, mq + 2, v[l]);
            rotate(q[l], n, c.nHeads(), false);
            rotate(k[l], n, c.nKvHeads(), false);
            attend(l, n);
            int mo = TrainingWeights.matrix(l, O);
            round(w, attnOut[l], attnOutQ[l], n, dim);
            product(input(w, mo, attnOut[l], attnOutQ[l]), n, w, mo, tmp);
            for (int i = 0; i < n * dim; i++) {
                mid[l][i] = resid[l][i] + tmp[i];
            }
            rmsNorm(mid[l], w.norms[2 * l + 1], ffnIn[l], ffnInv[l], n);
            int mg = TrainingWeights.matrix(l, GATE);
            round(w, ffnIn[l], ffnInQ[l], n, dim);
            product(input(w, mg, ffnIn[l], ffnInQ[l]), n, w, mg, gate[l]);
            product(input(w, mg + 1, ffnIn[l], ffnInQ[l]), n, w, mg + 1, up[l]);
            sigmoid(gate[l], n * hidden, sig[l]);
            for (int i = 0; i < n * hidden; i++) {
                act[l][i] = gate[l][i] * sig[l][i] * up[l][i];
            }
            int md = TrainingWeights.matrix(l, DOWN);
            round(w, act[l], actQ[l], n, hidden);
            product(input(w, md, act[l], actQ[l]), n, w, md, tmp);
            for (int i = 0; i < n * dim; i++) {
                resid[l + 1][i] = mid[l][i] + tmp[i];
            }
        }
        rmsNorm(resid[layers], w.norms[2 * layers], outIn, outInv, n);
        int cls = TrainingWeights.classifier(c);
        round(w, outIn, outInQ, n, dim);
        product(input(w, cls, outIn, outInQ), n - 1, w, cls, logits);
    }

    /**
     * Adds to {@code grads} the gradients of a loss whose gradient with respect to {@link #logits()} is
     * {@code dLogits} ([T-1][vocab]), for the sequence of the last {@link #forward} with the same weights.
     */
    void backward(TrainingWeights w, float[] dLogits, TrainingWeights grads) {
        int n = length;
        int dim = c.dim();
        int hidden = c.hiddenDim();
        int cls = TrainingWeights.classifier(c);
        Arrays.fill(dNormed, 0, n * dim, 0);
        backProduct(dLogits, input(w, cls, outIn, outInQ), n - 1, w, cls, grads, dNormed);
        Arrays.fill(dResid, 0, n * dim, 0);
        rmsNormBackward(resid[layers], w.norms[2 * layers], outInv, dNormed, n, dResid, grads.norms[2 * layers]);
        for (int l = layers - 1; l >= 0; l--) {
            // Feed-forward: resid[l+1] = mid + down(act), act = silu(gate) * up.
            int md = TrainingWeights.matrix(l, DOWN);
            Arrays.fill(dGate, 0, n * hidden, 0);
            backProduct(dResid, input(w, md, act[l], actQ[l]), n, w, md, grads, dGate);
            for (int i = 0; i < n * hidden; i++) {
                float g = gate[l][i];
                float s = sig[l][i];
                float dAct = dGate[i];
                dUp[i] = dAct * g * s;
                dGate[i] = dAct * up[l][i] * s * (1 + g * (1 - s));
            }
            int mg = TrainingWeights.matrix(l, GATE);
            Arrays.fill(dNormed, 0, n * dim, 0);
            backProduct(dGate, input(w, mg, ffnIn[l], ffnInQ[l]), n, w, mg, grads, dNormed);
            backProduct(dUp, input(w, mg + 1, ffnIn[l], ffnInQ[l]), n, w, mg + 1, grads, dNormed);
            rmsNormBackward(mid[l], w.norms[2 * l + 1], ffnInv[l], dNormed, n, dResid, grads.norms[2 * l + 1]);
            // Attention: mid = resid[l] + wo(attend(rope(wq x), rope(wk x), wv x)), x = norm(resid[l]).
            int mo = TrainingWeights.matrix(l, O);
            Arrays.fill(dAttnOut, 0, n * dim, 0);
            backProduct(dResid, input(w, mo, attnOut[l], attnOutQ[l]), n, w, mo, grads, dAttnOut);
            attendBackward(l, n);
            rotate(dq, n, c.nHeads(), true);
            rotate(dk, n, c.nKvHeads(), true);
            int mq = TrainingWeights.matrix(l, Q);
            Arrays.fill(dNormed, 0, n * dim, 0);
            backProduct(dq, input(w, mq, attnIn[l], attnInQ[l]), n, w, mq, grads, dNormed);
            backProduct(dk, input(w, mq + 1, attnIn[l], attnInQ[l]), n, w, mq + 1, grads, dNormed);
            backProduct(dv, input(w, mq + 2, attnIn[l], attnInQ[l]), n, w, mq + 2, grads, dNormed);
            rmsNormBackward(resid[l], w.norms[2 * l], attnInv[l], dNormed, n, dResid, grads.norms[2 * l]);
        }
        float[] dTable = grads.matrices[TrainingWeights.embedding(c)];
        for (int t = 0; t < n; t++) {
            int row = tokens[t] * dim;
            for (int i = 0; i < dim; i++) {
                dTable[row + i] += dResid[t * dim + i];
            }
        }
    }

    /** The input matrix {@code m} sees: the rounded activations where it takes rounded inputs. */
    private static float[] input(TrainingWeights w, int m, float[] x, float[] rounded) {
        return w.roundedInputs[m] ? rounded : x;
    }

    /** {@code y[t] = W x[t]} for t below n (through the transposed matrix: sums of its scaled rows). */
    private void product(float[] x, int n, TrainingWeights w, int m, float[] y) {
        rowsMath.product(x, n, TrainingWeights.cols(c, m), w.transposed[m], TrainingWeights.rows(c, m), y, false);
    }

    /**
     * For {@code y[t] = W x[t]} with output gradients {@code dy}: adds {@code dy[t] x[t]^T} to the matrix's
     * gradient and {@code W^T dy[t]} to {@code dx}.
     */
    private void backProduct(float[] dy, float[] x, int n, TrainingWeights w, int m, TrainingWeights grads,
                             float[] dx) {
        int rows = TrainingWeights.rows(c, m);
        int cols = TrainingWeights.cols(c, m);
        rowsMath.addOuterProducts(dy, x, n, rows, cols, grads.matrices[m]);
        rowsMath.product(dy, n, rows, w.matrices[m], cols, dx, true);
    }

    /** {@code out[i] = 1 / (1 + exp(-x[i]))}, through {@link FloatRows#exp} so that runs repeat bit for bit. */
    private void sigmoid(float[] x, int count, float[] out) {
        for (int i = 0; i < count; i++) {
            out[i] = -x[i];
        }
        rowsMath.exp(out, 0, count);
        for (int i = 0; i < count; i++) {
            out[i] = 1.0f / (1.0f + out[i]);
        }
    }

    /** The runtime's RMSNorm of each token (the scalar reference's row); keeps each token's inverse RMS. */
    private void rmsNorm(float[] x, float[] gain, float[] out, float[] inv, int n) {
        int dim = c.dim();
        for (int t = 0; t < n; t++) {
            inv[t] = ScalarBackend.rmsNormRow(x, t * dim, gain, dim, c.rmsNormEps(), out, t * dim);
        }
    }

    /**
     * For {@code y = g * r * x}, {@code r = (mean x^2 + eps)^-1/2}: adds
     * {@code dx_j = r g_j dy_j - r^3 / dim * x_j * sum_k dy_k g_k x_k} to {@code dx} and {@code dy r x} to
     * {@code dGain}.
     */
    private void rmsNormBackward(float[] x, float[] gain, float[] inv, float[] dy, int n, float[] dx,
                                 float[] dGain) {
        int dim = c.dim();
        for (int t = 0; t < n; t++) {
            int o = t * dim;
            float r = inv[t];
            float dot = 0;
            for (int j = 0; j < dim; j++) {
                dot += dy[o + j] * gain[j] * x[o + j];
                dGain[j] += dy[o + j] * r * x[o + j];
            }
            float coef = r * r * r / dim * dot;
            for (int j = 0; j < dim; j++) {
                dx[o + j] += r * gain[j] * dy[o + j] - coef * x[o + j];
            }
        }
    }

    /**
     * Rotary embedding of every token at positions 0..n-1 (the reference's {@link RopeTable#rotate}), or with
     * {@code inverse} its transpose, the inverse rotation, which is the backward pass of the forward one.
     */
    private void rotate(float[] a, int n, int heads, boolean inverse) {
        int width = heads * c.headSize();
        for (int t = 0; t < n; t++) {
            rope.rotate(a, t * width, width, t, inverse);
        }
    }

    /**
     * Causal grouped-query attention of layer l, keeping the probabilities. Keys and values are first transposed
     * to {@code [kvDim][n]}, so that a head's scores and outputs are long vector sums over positions.
     */
    private void attend(int l, int n) {
        int hs = c.headSize();
        int heads = c.nHeads();
        int kvDim = c.kvDim();
        int dim = c.dim();
        int kvMul = heads / c.nKvHeads();
        float invNorm = 1 / (float) Math.sqrt(hs);
        float[] p = probs[l];
        float[] out = attnOut[l];
        float[] ql = q[l];
        transpose(k[l], n, kvDim, kT[l]);
        transpose(v[l], n, kvDim, vT[l]);
        for (int h = 0; h < heads; h++) {
            int kvo = (h / kvMul) * hs;
            for (int t = 0; t < n; t++) {
                int qo = t * dim + h * hs;
                int po = (h * n + t) * n;
                Arrays.fill(p, po, po + t + 1, 0);
                for (int j = 0; j < hs; j++) {
                    rowsMath.axpy(ql[qo + j] * invNorm, kT[l], (kvo + j) * n, p, po, t + 1);
                }
                rowsMath.softmax(p, po, t + 1);
                for (int j = 0; j < hs; j++) {
                    out[qo + j] = rowsMath.dot(p, po, vT[l], (kvo + j) * n, t + 1);
                }
            }
        }
    }

    /**
     * From {@link #dAttnOut}: the gradients of q and k (after rotary) and v into {@link #dq}, {@link #dk},
     * {@link #dv}. With {@code P} the probabilities and {@code S} the scores of one head and query:
     * {@code dP = dOut V^T}, {@code dS = P (dP - sum P dP)}, {@code dq = dS K / sqrt(hs)},
     * {@code dK += dS q / sqrt(hs)}, {@code dV += P dOut}; keys and values are accumulated transposed
     * ({@code [kvDim][n]}) and transposed back.
     */
    private void attendBackward(int l, int n) {
        int hs = c.headSize();
        int heads = c.nHeads();
        int kvDim = c.kvDim();
        int dim = c.dim();
        int kvMul = heads / c.nKvHeads();
        float invNorm = 1 / (float) Math.sqrt(hs);
        float[] p = probs[l];
        float[] ql = q[l];
        Arrays.fill(dkT, 0, kvDim * n, 0);
        Arrays.fill(dvT, 0, kvDim * n, 0);
        for (int h = 0; h < heads; h++) {
            int kvo = (h / kvMul) * hs;
            for (int t = 0; t < n; t++) {
                int qo = t * dim + h * hs;
                int po = (h * n + t) * n;
                Arrays.fill(dScores, 0, t + 1, 0);
                for (int j = 0; j < hs; j++) {
                    float g = dAttnOut[qo + j];
                    rowsMath.axpy(g, vT[l], (kvo + j) * n, dScores, 0, t + 1);
                    rowsMath.axpy(g, p, po, dvT, (kvo + j) * n, t + 1);
                }
                float weighted = rowsMath.dot(p, po, dScores, 0, t + 1);
                for (int u = 0; u <= t; u++) {
                    dScores[u] = p[po + u] * (dScores[u] - weighted) * invNorm;
                }
                for (int j = 0; j < hs; j++) {
                    dq[qo + j] = rowsMath.dot(dScores, 0, kT[l], (kvo + j) * n, t + 1);
                    rowsMath.axpy(ql[qo + j], dScores, 0, dkT, (kvo + j) * n, t + 1);
                }
            }
        }
        transpose(dkT, kvDim, n, dk);
        transpose(dvT, kvDim, n, dv);
    }

    /** {@code out[j][i] = a[i][j]} for a of {@code [rows][cols]}. */
    private static void transpose(float[] a, int rows, int cols, float[] out) {
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                out[j * rows + i] = a[i * cols + j];
            }
        }
    }

    /**
     * Per-token rounding of a matrix input as the kernels do it, so that the pass sees the values the runtime will
     * multiply: INT8 (the reference quantizer's codes times its scale) or binary ({@code mean |x| * sign(x)}, the
     * sign -1 where {@code x < 0}). Skipped where no matrix takes rounded inputs.
     */
    private void round(TrainingWeights w, float[] x, float[] out, int n, int width) {
        boolean any = false;
        for (boolean r : w.roundedInputs) {
            any |= r;
        }
        if (!any) {
            return;
        }
        boolean binary = w.rounding == ActivationHint.BINARY;
        for (int t = 0; t < n; t++) {
            int o = t * width;
            if (binary) {
                // Products of binary weights and binary inputs are exact integer sums in the kernels, so a sum
                // that cancels is exactly 0 there (sign +1), where this pass's float sums leave a residue near
                // 1e-9 of either sign. Values that small against the token's scale count as zero.
                float scale = ActivationQuantizer.meanAbs(x, o, width);
                float zero = BINARY_ZERO * scale;
                for (int i = 0; i < width; i++) {
                    out[o + i] = x[o + i] < -zero ? -scale : scale;
                }
                continue;
            }
            float scale = ActivationQuantizer.quantizeInt8(x, o, width, codes, 0);
            for (int i = 0; i < width; i++) {
                out[o + i] = codes[i] * scale;
            }
        }
    }

    /** Floats the buffers of {@link #ensure} hold for sequences of {@code n} tokens (kept in step with it). */
    static long floatsFor(ModelConfig c, long n) {
        long layers = c.nLayers();
        long perLayer = n * (9L * c.dim() + 4L * c.kvDim() + 5L * c.hiddenDim() + (long) c.nHeads() * n + 2);
        long once = n * (9L * c.dim() + 4L * c.kvDim() + 2L * c.hiddenDim() + c.vocabSize() + 2);
        return layers * perLayer + once;
    }

    private void ensure(int n) {
        if (n <= capacity) {
            return;
        }
        int dim = c.dim();
        int kvDim = c.kvDim();
        int hidden = c.hiddenDim();
        resid = new float[layers + 1][n * dim];
        mid = new float[layers][n * dim];
        attnInv = new float[layers][n];
        ffnInv = new float[layers][n];
        attnIn = new float[layers][n * dim];
        attnInQ = new float[layers][n * dim];
        q = new float[layers][n * dim];
        k = new float[layers][n * kvDim];
        v = new float[layers][n * kvDim];
        kT = new float[layers][n * kvDim];
        vT = new float[layers][n * kvDim];
        probs = new float[layers][c.nHeads() * n * n];
        attnOut = new float[layers][n * dim];
        attnOutQ = new float[layers][n * dim];
        ffnIn = new float[layers][n * dim];
        ffnInQ = new float[layers][n * dim];
        gate = new float[layers][n * hidden];
        up = new float[layers][n * hidden];
        act = new float[layers][n * hidden];
        sig = new float[layers][n * hidden];
        actQ = new float[layers][n * hidden];
        outInv = new float[n];
        outIn = new float[n * dim];
        outInQ = new float[n * dim];
        logits = new float[n * c.vocabSize()];
        dResid = new float[n * dim];
        dNormed = new float[n * dim];
        dAttnOut = new float[n * dim];
        dq = new float[n * dim];
        dk = new float[n * kvDim];
        dv = new float[n * kvDim];
        dkT = new float[n * kvDim];
        dvT = new float[n * kvDim];
        dGate = new float[n * hidden];
        dUp = new float[n * hidden];
        dScores = new float[n];
        tmp = new float[n * dim];
        codes = new byte[Math.max(dim, hidden)];
        capacity = n;
    }
}
