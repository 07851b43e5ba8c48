package io.bitplane.runtime;

/**
 * @param contextLength positions the KV cache holds (0: the model's maximum); memory grows with it
 * @param batchSize     tokens processed together during prompt processing and scoring
 */
public record SessionOptions(int contextLength, int batchSize) {
    public SessionOptions {
        if (contextLength < 0) {
            throw new IllegalArgumentException("context length must be >= 0");
        }
        if (batchSize < 1 || batchSize > 4096) {
            throw new IllegalArgumentException("batch size must be in 1..4096");
        }
    }

    public static SessionOptions defaults() {
        return new SessionOptions(0, 32);
    }

    public static SessionOptions ofContext(int contextLength) {
        return new SessionOptions(contextLength, 32);
    }
}
