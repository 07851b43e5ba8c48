package io.bitplane.format;

import java.util.List;

/**
 * A SentencePiece-style vocabulary (llama2.c's tokenizer.bin, GGUF's tokenizer.ggml.*): token bytes, merge scores
 * and token types (GGUF's values: 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte).
 */
public record Vocabulary(String model, List<byte[]> tokens, float[] scores, int[] tokenTypes, int bosId, int eosId,
                         int maxTokenLength, String chatTemplate) {

    public static final int TYPE_NORMAL = 1;
    public static final int TYPE_UNKNOWN = 2;
    public static final int TYPE_CONTROL = 3;
    public static final int TYPE_BYTE = 6;

    public Vocabulary {
        tokens = List.copyOf(tokens);
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
