package io.bitplane.runtime;

/**
 * How an embedding is made of a text's hidden states (the last layer's, after the final norm), as llama.cpp's
 * {@code --pooling} names them: their mean (for a generative model, and for embedding models trained so), or the
 * last token's (Qwen3-Embedding, gte-Qwen2, e5-mistral: decoder embedding models read the state after the whole
 * text).
 */
public enum Pooling {
    MEAN,
    LAST
}
