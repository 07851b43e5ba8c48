package io.bitplane.kernels;

import io.bitplane.format.BpmTensor;

/**
 * The operations a Llama-family decoder step needs, on weights and buffers the backend owns, so that a device
 * backend can keep a whole step on the device (as ggml does). Batches are row-major: token b of a [batch][n]
 * buffer starts at float {@code b * n}.
 *
 * <p>Reference semantics (the scalar backend computes exactly these; faster backends match them within float
 * rounding, and exactly on integer accumulations):
 * <ul>
 *   <li>matmul, float weights: {@code y[n] = sum_k w[n][k] x[k]}, k ascending, float accumulation;</li>
 *   <li>matmul, quantized weights with float activations: per group g of row n, {@code acc = sum_{k in g}
 *   c[k] x[k]} with the integer code c of the encoding (INT8 q, INT4 u - 8, INT4_ASYM u, TERNARY t, BINARY +-1),
 *   {@code y[n] += s_g acc} (INT4_ASYM adds {@code m_g sum_{k in g} x[k]});</li>
 *   <li>matmul, quantized weights whose activation hint is INT8: each token is first quantized to int8 with one
 *   absmax scale {@code s_x = max|x| / 127}, {@code q = round(x / s_x)}; group sums are exact integers and
 *   {@code y[n] = s_x sum_g s_g acc_g} (INT4_ASYM adds {@code s_x m_g sum q}).</li>
 * </ul>
 * Thread-safety: a backend and its weights may be shared by many threads; each caller brings its own buffers.
 */
public interface Backend extends AutoCloseable {

    /** A short name: scalar, java, native, opencl. */
    String name();

    /** One line for logs and stats: the name and what it runs on (vector width, threads, device). */
    default String description() {
        return name();
    }

    /**
     * Makes a tensor of the mapped model usable by this backend (once per model). What the CPU backends make for it
     * (tiles, copies) is freed when the backend closes, not before: a backend serves one model.
     */
    Weights upload(BpmTensor tensor);

    /** A zeroed buffer of {@code floats} floats. */
    Buffer allocate(int floats);

    /** Writes row {@code row} of an embedding table, as floats, at {@code out[outOffset..]}. */
    void embed(Weights table, int row, Buffer out, int outOffset);

    /** {@code y[b] = W x[b]} for each of {@code batch} tokens; W is [N, K], x is [batch][K], y is [batch][N]. */
    void matmul(Weights w, Buffer x, Buffer y, int batch);

    /**
     * The products of several matrices with one input, {@code ys[i] = ws[i] x} (a layer's q, k and v; gate and up):
     * the same results as one {@link #matmul} each, which is what this default does. A backend may run them as one
     * job instead: the input prepared once (INT8 codes, tables), one split of all their rows over the threads.
     */
    default void matmuls(Weights[] ws, Buffer x, Buffer[] ys, int batch) {
        checkProductsOfOneInput(ws, ys);
        for (int i = 0; i < ws.length; i++) {
            matmul(ws[i], x, ys[i], batch);
        }
    }

    /** What {@link #matmuls} requires beyond each product's own checks: an output each, one width K for all. */
    static void checkProductsOfOneInput(Weights[] ws, Buffer[] ys) {
        if (ws.length != ys.length) {
            throw new IllegalArgumentException("matmuls: " + ws.length + " matrices but " + ys.length + " outputs");
        }
        for (Weights w : ws) {
            if (w.spec().cols() != ws[0].spec().cols()) {
                throw new IllegalArgumentException("matmuls: tensor " + w.spec().name() + " has " + w.spec().cols()
                        + " columns where " + ws[0].spec().name() + " has " + ws[0].spec().cols()
                        + " (products of one input need one width)");
            }
        }
    }

    /** RMSNorm per token: {@code out = gamma * x / sqrt(mean(x^2) + eps)}; out may be x. */
    void rmsNorm(Buffer out, Buffer x, Weights gamma, int dim, int batch, float eps);

    /**
     * Rotary embeddings in place on [batch][heads * headSize], rotating adjacent pairs (2i, 2i + 1) of each head
     * by {@code position * theta^(-2i / headSize)} (the llama2.c and GGUF order), divided by {@code
     * freqFactors[i]} when those are given (rope scaling, as ggml's {@code rope_ext} takes GGUF's rope_freqs).
     *
     * @param freqFactors null, or headSize / 2 divisors; callers pass the same array each step (it is not copied)
     */
    void rope(Buffer v, int batch, int[] positions, int heads, int headSize, float theta, float[] freqFactors);

    /**
     * Causal attention: for each token b, softmax over cached positions {@code 0..positions[b]} of
     * {@code q . k / sqrt(headSize)}, weighted sum of values into out[b]. keys and values are [capacity][kvDim].
     */
    void attention(Buffer out, Buffer q, Buffer keys, Buffer values, int[] positions, int batch, AttentionShape s);

    /**
     * Attention of sequences side by side, each over a cache of its own, in one call: run i is columns {@code
     * [runStarts[i], runStarts[i + 1])} of q and out ({@code runStarts[runs]} is the batch), attending over
     * {@code keys[i]} and {@code values[i]} at the columns' positions. Where one {@link #attention} a run split each
     * run's little work over the threads on its own (a decoding step of 16 sequences: 16 calls a layer, each a
     * wait for the pool), one call spreads all of it. Returns false, having done nothing, where a backend has no
     * such op (the caller then calls attention once per run); results equal those calls' bit for bit. Runs that
     * do not start at column 0 and follow one another are refused by every backend ({@link #checkRuns}).
     */
    default boolean attentionOfRuns(Buffer out, Buffer q, Buffer[] keys, Buffer[] values, int[] positions,
                                    int[] runStarts, int runs, AttentionShape s) {
        checkRuns(keys, values, runStarts, runs);
        return false;
    }

    /** That {@link #attentionOfRuns}' runs start at column 0, each after the one before, and have their caches. */
    static void checkRuns(Buffer[] keys, Buffer[] values, int[] runStarts, int runs) {
        if (runs < 1 || runStarts.length <= runs || keys.length < runs || values.length < runs) {
            throw new IllegalArgumentException("attentionOfRuns: " + runs + " runs with " + runStarts.length
                    + " starts, " + keys.length + " key and " + values.length + " value caches");
        }
        if (runStarts[0] != 0) {
            throw new IllegalArgumentException("attentionOfRuns: the first run starts at column " + runStarts[0]);
        }
        for (int i = 0; i < runs; i++) {
            if (runStarts[i + 1] <= runStarts[i]) {
                throw new IllegalArgumentException("attentionOfRuns: run " + i + " covers columns " + runStarts[i]
                        + " to " + runStarts[i + 1]);
            }
        }
    }

    /** {@code gate = silu(gate) * up} over n floats. */
    void swiGlu(Buffer gate, Buffer up, int n);

    /** {@code acc += x} over n floats. */
    void add(Buffer acc, Buffer x, int n);

    /**
     * {@code acc[b * n + i] += bias[i]} for each of {@code batch} rows of n floats: a projection's bias (Qwen2's
     * q, k and v). {@code bias} is a float tensor of at least n values.
     */
    void addBias(Buffer acc, Weights bias, int n, int batch);

    /** Copies n floats between buffers of this backend. */
    void copy(Buffer src, int srcOffset, Buffer dst, int dstOffset, int n);

    /** Copies n floats from a buffer to the host. */
    void read(Buffer src, int srcOffset, float[] dst, int dstOffset, int n);

    /** Copies n floats from the host into a buffer. */
    void write(float[] src, int srcOffset, Buffer dst, int dstOffset, int n);

    /**
     * Releases what the backend holds (the weights it made at upload, device memory, threads); the default holds
     * nothing. Weights it made must not be used after: the CPU backends' fail with {@link IllegalStateException}
     * (where they are not the file's own bytes).
     */
    @Override
    default void close() {
    }
}
