package io.bitplane.runtime.tokenizer;

/**
 * Text to token ids and back. Implementations: {@link SentencePieceBpe} (llama2.c and GGUF "llama"); a byte-level
 * BPE (tokenizer.json, GPT-2 / Llama 3) can be added behind this interface without touching callers.
 * Implementations are immutable and thread-safe.
 */
public interface Tokenizer {
    int vocabSize();

    int bos();

    int eos();

    /** Token ids of {@code text}, with BOS first and EOS last when asked. */
    int[] encode(String text, boolean addBos, boolean addEos);

    /**
     * The bytes {@code token} contributes to the text when it follows {@code previous} (some tokenizers strip a
     * leading space after BOS, and byte tokens stand for one raw byte). Control tokens contribute nothing.
     */
    byte[] piece(int previous, int token);

    /** True for tokens that end a sequence. */
    default boolean isEndOfSequence(int token) {
        return token == eos();
    }

    /** The whole text of a token sequence (as {@link #piece} pieces, UTF-8 decoded). */
    default String decode(int[] tokens) {
        TextDecoder d = new TextDecoder();
        StringBuilder sb = new StringBuilder();
        int prev = -1;
        for (int t : tokens) {
            sb.append(d.append(piece(prev, t)));
            prev = t;
        }
        return sb.append(d.flush()).toString();
    }
}
