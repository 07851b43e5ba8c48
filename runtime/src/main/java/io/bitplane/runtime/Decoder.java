package io.bitplane.runtime;

import io.bitplane.format.ModelConfig;
import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Buffer;

/**
 * The Llama forward pass, top to bottom as in llama2.c's {@code forward}, for a batch of consecutive tokens of one
 * sequence (prefill) or a single token (decode). Owns the scratch buffers and the KV cache of one session; every
 * operation goes through the {@link Backend}, so a device backend can keep the whole step on the device.
 */
final class Decoder {
    private final ModelConfig c;
    private final Backend backend;
    private final LlamaWeights w;
    private final AttentionShape shape;
    final int capacity;
    final int maxBatch;

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
    // KV cache: per layer [capacity][kvDim].
    private final Buffer[] keyCache;
    private final Buffer[] valueCache;

    Decoder(ModelConfig c, Backend backend, LlamaWeights w, int capacity, int maxBatch, int maxLogitRows) {
        this.c = c;
        this.backend = backend;
        this.w = w;
        this.capacity = capacity;
        this.maxBatch = maxBatch;
        this.shape = new AttentionShape(c.nHeads(), c.nKvHeads(), c.headSize());
        x = backend.allocate(maxBatch * c.dim());
        xb = backend.allocate(maxBatch * c.dim());
        xb2 = backend.allocate(maxBatch * c.dim());
        q = backend.allocate(maxBatch * c.dim());
        k = backend.allocate(maxBatch * c.kvDim());
        v = backend.allocate(maxBatch * c.kvDim());
        hb = backend.allocate(maxBatch * c.hiddenDim());
        hb2 = backend.allocate(maxBatch * c.hiddenDim());
        logits = backend.allocate(maxLogitRows * c.vocabSize());
        keyCache = new Buffer[c.nLayers()];
        valueCache = new Buffer[c.nLayers()];
        for (int l = 0; l < c.nLayers(); l++) {
            keyCache[l] = backend.allocate(capacity * c.kvDim());
            valueCache[l] = backend.allocate(capacity * c.kvDim());
        }
    }

    /** Bytes this decoder allocated (KV cache and scratch), for memory reports. */
    long allocatedBytes() {
        long floats = (long) maxBatch * (4L * c.dim() + 2L * c.kvDim() + 2L * c.hiddenDim())
                + (long) logits.length() + 2L * c.nLayers() * capacity * c.kvDim();
        return floats * 4;
    }

    /**
     * Runs {@code n} tokens at positions {@code start .. start + n)} (the cache must hold positions before
     * {@code start}), and writes the logits of the last {@code logitRows} of them to {@code out} (row-major).
     */
    void forward(int[] tokens, int offset, int n, int start, int logitRows, float[] out) {
        int dim = c.dim();
        int kvDim = c.kvDim();
        int hidden = c.hiddenDim();
        int[] positions = new int[n];
        for (int b = 0; b < n; b++) {
            positions[b] = start + b;
            backend.embed(w.tokenEmbedding, tokens[offset + b], x, b * dim);
        }
        for (int l = 0; l < w.layers.length; l++) {
            LlamaWeights.Layer layer = w.layers[l];
            // Attention: norm, q k v projections, rotary, cache the keys and values, attend, project back.
            backend.rmsNorm(xb, x, layer.attnNorm(), dim, n, c.rmsNormEps());
            backend.matmul(layer.wq(), xb, q, n);
            backend.matmul(layer.wk(), xb, k, n);
            backend.matmul(layer.wv(), xb, v, n);
            backend.rope(q, n, positions, c.nHeads(), c.headSize(), c.ropeTheta());
            backend.rope(k, n, positions, c.nKvHeads(), c.headSize(), c.ropeTheta());
            backend.copy(k, 0, keyCache[l], start * kvDim, n * kvDim);
            backend.copy(v, 0, valueCache[l], start * kvDim, n * kvDim);
            backend.attention(xb, q, keyCache[l], valueCache[l], positions, n, shape);
            backend.matmul(layer.wo(), xb, xb2, n);
            backend.add(x, xb2, n * dim);
            // Feed-forward: norm, SwiGLU, project back.
            backend.rmsNorm(xb, x, layer.ffnNorm(), dim, n, c.rmsNormEps());
            backend.matmul(layer.gate(), xb, hb, n);
            backend.matmul(layer.up(), xb, hb2, n);
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
        backend.matmul(w.output, xb, logits, logitRows);
        backend.read(logits, 0, out, 0, logitRows * c.vocabSize());
    }
}
