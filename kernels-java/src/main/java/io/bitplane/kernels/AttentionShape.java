package io.bitplane.kernels;

/**
 * Grouped-query attention geometry. Queries are [nHeads * headSize] per token; keys and values in the cache are
 * [position][nKvHeads * headSize]; query head h reads key/value head {@code h / (nHeads / nKvHeads)}.
 */
public record AttentionShape(int nHeads, int nKvHeads, int headSize) {
    public int queryDim() {
        return nHeads * headSize;
    }

    public int kvDim() {
        return nKvHeads * headSize;
    }
}
