package io.bitplane.runtime;

import io.bitplane.format.ModelConfig;
import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.Weights;

import java.util.Arrays;

/**
 * The Llama forward pass, top to bottom as in llama2.c's {@code forward}, over a batch of token columns. Column b
 * is token {@code tokens[b]} at position {@code positions[b]} of the sequence whose cache is {@code caches[b]}:
 * prefill passes consecutive positions of one sequence, a continuous-batching step passes one token of each of
 * several sequences. Owns only scratch buffers; every operation goes through the {@link Backend}, so a device
 * backend can keep the whole step on the device. Each column's arithmetic is independent of the others, so a
 * sequence gets the same logits alone as beside others.
 */
final class Decoder {
    private final ModelConfig c;
    private final Backend backend;
    private final LlamaWeights w;
    /** The model's passes in flight, which its close waits for. */
    private final ModelUse use;
    private final AttentionShape shape;
    /** The config's rope scaling (or null), copied once: the backend's rotary table is kept while it is the same. */
    private final float[] ropeFreqFactors;
    final int maxBatch;
    final int maxLogitRows;

    // Activations, [maxBatch][...] each.
    private final Buffer x;
    private final Buffer xb;
    private final Buffer xb2;
    private final Buffer q;
    private final Buffer k;
    private final Buffer v;
    private final Buffer hb;
    private final Buffer hb2;
    private final Buffer logits;
    // Attention of a run of columns that does not start at column 0 (several sequences in one step).
    private final Buffer runQuery;
    private final Buffer runOut;
    // The products of one input, per layer, and their outputs: q, k and v of the normed x; gate and up of it.
    private final Weights[][] qkv;
    private final Buffer[] qkvOut;
    private final Weights[][] gateUp;
    private final Buffer[] gateUpOut;
    // One sequence's columns as the general forward takes them, and a run's positions: filled again every call, so
    // that a decoding step allocates nothing.
    private final int[] columnTokens;
    private final int[] columnPositions;
    private final KvCache[] columnCaches;
    private final int[] runPositions;
    // A step's runs of columns that share a cache: where each starts (and the batch after the last), their caches,
    // and the caches' keys and values for Backend#attentionOfRuns. One sequence stores only into the KvCache[]: C2
    // (JDK 25) guesses that an array of an interface type (Buffer[]) is exactly that type, traps at every store
    // site into one the first time it runs, and sends this method back to be compiled again (docs/PERFORMANCE.md,
    // "What `bitplane bench` itself got wrong"); an array of a final class it gets right.
    private final int[] runStarts;
    private final KvCache[] runCaches;
    private final Buffer[] runKeys;
    private final Buffer[] runValues;

    Decoder(ModelConfig c, Backend backend, LlamaWeights w, ModelUse use, int maxBatch, int maxLogitRows) {
        this.c = c;
        this.backend = backend;
        this.w = w;
        this.use = use;
        this.maxBatch = maxBatch;
        this.maxLogitRows = maxLogitRows;
        this.shape = new AttentionShape(c.nHeads(), c.nKvHeads(), c.headSize());
        this.ropeFreqFactors = c.ropeFreqFactors();
        // xb holds a normed x (dim) and the attention's output (queryDim: Qwen3's heads need not make up dim)
        int wide = Math.max(c.dim(), c.queryDim());
        x = backend.allocate(maxBatch * c.dim());
        xb = backend.allocate(maxBatch * wide);
        xb2 = backend.allocate(maxBatch * c.dim());
        q = backend.allocate(maxBatch * c.queryDim());
        k = backend.allocate(maxBatch * c.kvDim());
        v = backend.allocate(maxBatch * c.kvDim());
        hb = backend.allocate(maxBatch * c.hiddenDim());
        hb2 = backend.allocate(maxBatch * c.hiddenDim());
        logits = backend.allocate(maxLogitRows * c.vocabSize());
        runQuery = backend.allocate(maxBatch * c.queryDim());
        runOut = backend.allocate(maxBatch * c.queryDim());
        qkv = new Weights[w.layers.length][];
        gateUp = new Weights[w.layers.length][];
        for (int l = 0; l < w.layers.length; l++) {
            LlamaWeights.Layer layer = w.layers[l];
            qkv[l] = new Weights[] {layer.wq(), layer.wk(), layer.wv()};
            gateUp[l] = new Weights[] {layer.gate(), layer.up()};
        }
        columnTokens = new int[maxBatch];
        columnPositions = new int[maxBatch];
        columnCaches = new KvCache[maxBatch];
        runPositions = new int[maxBatch];
        runStarts = new int[maxBatch + 1];
        runCaches = new KvCache[maxBatch];
        runKeys = new Buffer[maxBatch];
        runValues = new Buffer[maxBatch];
        qkvOut = new Buffer[] {q, k, v};
        gateUpOut = new Buffer[] {hb, hb2};
    }

    /** Bytes of this decoder's scratch buffers, for memory reports. */
    long allocatedBytes() {
        long floats = (long) maxBatch * (2L * c.dim() + Math.max(c.dim(), c.queryDim()) + 3L * c.queryDim()
                + 2L * c.kvDim() + 2L * c.hiddenDim()) + logits.length();
        return floats * 4;
    }

    /** Runs {@code n} consecutive tokens of one sequence from position {@code start}; see the general form. */
    void forward(int[] tokens, int offset, int n, KvCache cache, int start, int logitRows, float[] out) {
        fillColumns(tokens, offset, n, cache, start);
        forward(columnTokens, columnPositions, columnCaches, n, logitRows, out);
    }

    /** One sequence's {@code n} tokens from position {@code start} as the column arrays. */
    private void fillColumns(int[] tokens, int offset, int n, KvCache cache, int start) {
        if (n > maxBatch) {
            throw new IllegalArgumentException(n + " columns; this decoder runs at most " + maxBatch);
        }
        for (int b = 0; b < n; b++) {
            columnTokens[b] = tokens[offset + b];
            columnPositions[b] = start + b;
            columnCaches[b] = cache;
        }
    }

    /**
     * Runs {@code n} token columns (each cache must hold its sequence's positions before {@code positions[b]};
     * columns of one sequence are adjacent and in order) and writes the logits of the last {@code logitRows}
     * columns to {@code out} (row-major).
     *
     * @throws IllegalStateException once the model is closed (its close waits for the passes running)
     */
    void forward(int[] tokens, int[] positions, KvCache[] caches, int n, int logitRows, float[] out) {
        use.enter();
        try {
            pass(tokens, positions, caches, n, logitRows, out, false);
        } finally {
            use.exit();
        }
    }

    /**
     * Runs {@code n} consecutive tokens of one sequence from position {@code start}, as {@link #forward}, and writes
     * the last {@code rows} columns' hidden states after the final norm (row-major, dim each) to {@code out}
     * instead of logits: what embeddings pool.
     */
    void hidden(int[] tokens, int offset, int n, KvCache cache, int start, int rows, float[] out) {
        fillColumns(tokens, offset, n, cache, start);
        use.enter();
        try {
            pass(columnTokens, columnPositions, columnCaches, n, rows, out, true);
        } finally {
            use.exit();
        }
    }

    /** The forward pass itself, top to bottom; {@code statesOut}: the normed states of the last rows, not logits. */
    private void pass(int[] tokens, int[] positions, KvCache[] caches, int n, int logitRows, float[] out,
                      boolean statesOut) {
        int dim = c.dim();
        int kvDim = c.kvDim();
        int hidden = c.hiddenDim();
        for (int b = 0; b < n; b++) {
            backend.embed(w.tokenEmbedding, tokens[b], x, b * dim);
        }
        for (int l = 0; l < w.layers.length; l++) {
            LlamaWeights.Layer layer = w.layers[l];
            // Attention: norm, q k v projections, rotary, cache the keys and values, attend, project back.
            backend.rmsNorm(xb, x, layer.attnNorm(), dim, n, c.rmsNormEps());
            backend.matmuls(qkv[l], xb, qkvOut, n);
            if (layer.bq() != null) {  // Qwen2's projections add a bias
                backend.addBias(q, layer.bq(), c.queryDim(), n);
                backend.addBias(k, layer.bk(), kvDim, n);
                backend.addBias(v, layer.bv(), kvDim, n);
            }
            if (layer.qNorm() != null) {  // Qwen3 norms each head of q and k (in place: a row is a head)
                backend.rmsNorm(q, q, layer.qNorm(), c.headSize(), n * c.nHeads(), c.rmsNormEps());
                backend.rmsNorm(k, k, layer.kNorm(), c.headSize(), n * c.nKvHeads(), c.rmsNormEps());
            }
            backend.rope(q, n, positions, c.nHeads(), c.headSize(), c.ropeTheta(), ropeFreqFactors);
            backend.rope(k, n, positions, c.nKvHeads(), c.headSize(), c.ropeTheta(), ropeFreqFactors);
            attendRuns(l, positions, caches, n);
            backend.matmul(layer.wo(), xb, xb2, n);
            backend.add(x, xb2, n * dim);
            // Feed-forward: norm, SwiGLU, project back.
            backend.rmsNorm(xb, x, layer.ffnNorm(), dim, n, c.rmsNormEps());
            backend.matmuls(gateUp[l], xb, gateUpOut, n);
            backend.swiGlu(hb, hb2, n * hidden);
            backend.matmul(layer.down(), hb, xb, n);
            backend.add(x, xb, n * dim);
        }
        if (logitRows == 0) {
            return;
        }
        int first = n - logitRows;
        backend.copy(x, first * dim, xb, 0, logitRows * dim);
        backend.rmsNorm(xb, xb, w.outputNorm, dim, logitRows, c.rmsNormEps());
        if (statesOut) {
            backend.read(xb, 0, out, 0, logitRows * dim);
            return;
        }
        backend.matmul(w.output, xb, logits, logitRows);
        backend.read(logits, 0, out, 0, logitRows * c.vocabSize());
    }

    /**
     * Stores each column's key and value in its cache and attends: the runs of adjacent columns that share a cache
     * (sequences) in one call where the backend has one ({@link Backend#attentionOfRuns}), else one call per run
     * (a run not at column 0 goes through the run buffers, since attention reads from column 0).
     */
    private void attendRuns(int layer, int[] positions, KvCache[] caches, int n) {
        int kvDim = c.kvDim();
        int qDim = shape.queryDim();
        int runs = 0;
        for (int r0 = 0; r0 < n; runs++) {
            KvCache cache = caches[r0];
            int r1 = r0 + 1;
            while (r1 < n && caches[r1] == cache) {
                r1++;
            }
            backend.copy(k, r0 * kvDim, cache.keys[layer], positions[r0] * kvDim, (r1 - r0) * kvDim);
            backend.copy(v, r0 * kvDim, cache.values[layer], positions[r0] * kvDim, (r1 - r0) * kvDim);
            runStarts[runs] = r0;
            runCaches[runs] = cache;
            r0 = r1;
        }
        runStarts[runs] = n;
        try {
            if (runs > 1 && attendAllRuns(layer, positions, runs)) {
                return;
            }
            for (int i = 0; i < runs; i++) {
                int r0 = runStarts[i];
                int len = runStarts[i + 1] - r0;
                Buffer keys = runCaches[i].keys[layer];
                Buffer values = runCaches[i].values[layer];
                if (r0 == 0) {
                    backend.attention(xb, q, keys, values, positions, len, shape);
                } else {
                    System.arraycopy(positions, r0, runPositions, 0, len);
                    backend.copy(q, r0 * qDim, runQuery, 0, len * qDim);
                    backend.attention(runOut, runQuery, keys, values, runPositions, len, shape);
                    backend.copy(runOut, 0, xb, r0 * qDim, len * qDim);
                }
            }
        } finally {
            Arrays.fill(runCaches, 0, runs, null); // a finished sequence's cache is not held here
        }
    }

    /** All {@code runs} runs in one call, where the backend has one ({@link Backend#attentionOfRuns}). */
    private boolean attendAllRuns(int layer, int[] positions, int runs) {
        for (int i = 0; i < runs; i++) {
            runKeys[i] = runCaches[i].keys[layer];
            runValues[i] = runCaches[i].values[layer];
        }
        try {
            return backend.attentionOfRuns(xb, q, runKeys, runValues, positions, runStarts, runs, shape);
        } finally {
            Arrays.fill(runKeys, 0, runs, null);
            Arrays.fill(runValues, 0, runs, null);
        }
    }
}
