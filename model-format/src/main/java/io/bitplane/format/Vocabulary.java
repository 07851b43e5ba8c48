package io.bitplane.format;

import java.util.List;

/**
 * A tokenizer's vocabulary, as GGUF's tokenizer.ggml.* keys hold it: token bytes, token types (GGUF's values: 1
 * normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte) and, by {@code model}:
 * <ul>
 *   <li>{@code "llama"}: SentencePiece-style BPE (llama2.c's tokenizer.bin too), merged by {@code scores};
 *   <li>{@code "gpt2"}: byte-level BPE (GPT-2, Llama 3, Qwen2), merged by rank: {@code merges} in order, each
 *       "left right" (two tokens' texts and a space), words split first by the pre-tokenizer named
 *       {@code preTokenizer} (GGUF's tokenizer.ggml.pre: "llama-bpe", "gpt-2", "qwen2", ...). Scores are unused.
 * </ul>
 * {@code addBos}: whether a sequence starts with BOS (GGUF's tokenizer.ggml.add_bos_token).
 */
public record Vocabulary(String model, List<byte[]> tokens, float[] scores, int[] tokenTypes, int bosId, int eosId,
                         int maxTokenLength, String chatTemplate, List<String> merges, String preTokenizer,
                         boolean addBos) {

    public static final String SENTENCE_PIECE = "llama";
    public static final String BYTE_LEVEL_BPE = "gpt2";
    /**
     * The names GGUF files give Llama 3's pre-tokenizer (tokenizer.ggml.pre); llama.cpp adds BOS for them where
     * tokenizer.ggml.add_bos_token is absent, and takes a word that is a token whole.
     */
    public static final java.util.Set<String> LLAMA3_PRE_TOKENIZERS = java.util.Set.of("llama-bpe", "llama3",
            "llama-v3");

    public static final int TYPE_NORMAL = 1;
    public static final int TYPE_UNKNOWN = 2;
    public static final int TYPE_CONTROL = 3;
    public static final int TYPE_USER_DEFINED = 4;
    public static final int TYPE_UNUSED = 5;
    public static final int TYPE_BYTE = 6;

    public Vocabulary {
        tokens = List.copyOf(tokens);
        merges = List.copyOf(merges);
    }

    /** A SentencePiece-style vocabulary (no merges, BOS first). */
    public Vocabulary(String model, List<byte[]> tokens, float[] scores, int[] tokenTypes, int bosId, int eosId,
                      int maxTokenLength, String chatTemplate) {
        this(model, tokens, scores, tokenTypes, bosId, eosId, maxTokenLength, chatTemplate, List.of(), null, true);
    }

    public int size() {
        return tokens.size();
    }

    /** What is inconsistent, or null. */
    public String problem() {
        if (scores.length != tokens.size() || tokenTypes.length != tokens.size()) {
            return tokens.size() + " tokens but " + scores.length + " scores and " + tokenTypes.length + " types";
        }
        if (bosId < -1 || bosId >= tokens.size() || eosId < -1 || eosId >= tokens.size()) {
            return "bos_id " + bosId + " or eos_id " + eosId + " outside the vocabulary of " + tokens.size();
        }
        return BYTE_LEVEL_BPE.equals(model) ? mergesProblem() : null;
    }

    /** A merge that is not two tokens whose joined text is a token too, or null. */
    private String mergesProblem() {
        if (merges.isEmpty()) {
            return "a byte-level BPE vocabulary (gpt2) needs merges";
        }
        java.util.Set<String> texts = new java.util.HashSet<>();
        for (byte[] t : tokens) {
            texts.add(new String(t, java.nio.charset.StandardCharsets.UTF_8));
        }
        for (int i = 0; i < merges.size(); i++) {
            String m = merges.get(i);
            int space = m.indexOf(' ');  // byte-level token texts hold no spaces (a space byte is written U+0120)
            if (space <= 0 || space == m.length() - 1 || m.indexOf(' ', space + 1) >= 0) {
                return "merge " + i + " '" + m + "' is not two token texts separated by one space";
            }
            String left = m.substring(0, space);
            String right = m.substring(space + 1);
            if (!texts.contains(left) || !texts.contains(right) || !texts.contains(left + right)) {
                return "merge " + i + " '" + m + "' joins texts that are not all tokens";
            }
        }
        return null;
    }

    /** Token types as llama2.c implies them: 0 unknown, 1 and 2 control (BOS, EOS), {@code <0xXX>} bytes. */
    public static int[] llama2cTypes(List<byte[]> tokens) {
        int[] types = new int[tokens.size()];
        for (int i = 0; i < types.length; i++) {
            String s = new String(tokens.get(i), java.nio.charset.StandardCharsets.ISO_8859_1);
            if (i == 0) {
                types[i] = TYPE_UNKNOWN;
            } else if (i <= 2) {
                types[i] = TYPE_CONTROL;
            } else if (s.matches("<0x[0-9A-Fa-f]{2}>")) {
                types[i] = TYPE_BYTE;
            } else {
                types[i] = TYPE_NORMAL;
            }
        }
        return types;
    }
}
