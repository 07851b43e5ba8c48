package io.bitplane.runtime.tokenizer;

import io.bitplane.format.Vocabulary;

/**
 * Text to token ids and back. Implementations: {@link SentencePieceBpe} (llama2.c and GGUF "llama") and
 * {@link ByteLevelBpe} (GGUF "gpt2": GPT-2, Llama 3, Qwen2), picked by {@link #forVocabulary}.
 * Implementations are immutable and thread-safe.
 */
public interface Tokenizer {
    /**
     * The tokenizer a vocabulary's model names.
     *
     * @throws IllegalArgumentException for a model (or pre-tokenizer) not supported, or a vocabulary it cannot use
     */
    static Tokenizer forVocabulary(Vocabulary vocab) {
        return switch (vocab.model()) {
            case Vocabulary.SENTENCE_PIECE -> new SentencePieceBpe(vocab);
            case Vocabulary.BYTE_LEVEL_BPE -> new ByteLevelBpe(vocab);
            default -> throw new IllegalArgumentException("tokenizer model '" + vocab.model()
                    + "' is not supported yet (llama: SentencePiece BPE, and gpt2: byte-level BPE, are)");
        };
    }

    /** The vocabulary this tokenizer reads. */
    Vocabulary vocabulary();

    default int vocabSize() {
        return vocabulary().size();
    }

    /** The BOS token, or -1. */
    default int bos() {
        return vocabulary().bosId();
    }

    /** The EOS token, or -1. */
    default int eos() {
        return vocabulary().eosId();
    }

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
