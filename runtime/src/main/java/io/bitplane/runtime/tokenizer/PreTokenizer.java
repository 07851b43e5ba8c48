package io.bitplane.runtime.tokenizer;

import io.bitplane.format.Vocabulary;

import java.util.Map;
import java.util.regex.Pattern;

/**
 * How a byte-level BPE cuts text into words before merging, by the name GGUF's tokenizer.ggml.pre gives it (the
 * names and expressions are llama.cpp's, which copies them from each model's tokenizer.json). Java's {@code \s}
 * is made Unicode's White_Space, as in those engines. An unknown name is refused: another model's expression would
 * tokenize, but not as the model was trained.
 *
 * @param ignoresMerges a word that is itself a token is taken whole (Llama 3's tokenizer.json: "ignore_merges")
 */
record PreTokenizer(String name, Pattern pattern, boolean ignoresMerges) {
    private static final String CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

    /** GPT-2's, and Hugging Face's ByteLevel pre-tokenizer's. */
    private static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
            + "|\\s+(?!\\S)|\\s+";

    /** Llama 3's: numbers in threes, punctuation runs keep the newlines after them. */
    private static final String LLAMA3 = CONTRACTIONS + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** Qwen2's: Llama 3's with digits one by one. */
    private static final String QWEN2 = CONTRACTIONS + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private static final Map<String, PreTokenizer> KNOWN = known();

    private static Map<String, PreTokenizer> known() {
        Map<String, PreTokenizer> known = new java.util.HashMap<>();
        known.put("gpt-2", of("gpt-2", GPT2, false));
        known.put("qwen2", of("qwen2", QWEN2, false));
        for (String name : Vocabulary.LLAMA3_PRE_TOKENIZERS) {
            known.put(name, of(name, LLAMA3, true));
        }
        return Map.copyOf(known);
    }

    private static PreTokenizer of(String name, String regex, boolean ignoresMerges) {
        return new PreTokenizer(name, Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS), ignoresMerges);
    }

    /**
     * The pre-tokenizer called {@code name}; null (GGUF files from before the key existed) is GPT-2's.
     *
     * @throws IllegalArgumentException for a name not known here
     */
    static PreTokenizer named(String name) {
        PreTokenizer p = KNOWN.get(name == null ? "gpt-2" : name);
        if (p == null) {
            throw new IllegalArgumentException("pre-tokenizer '" + name + "' is not supported yet (known: "
                    + String.join(", ", new java.util.TreeSet<>(KNOWN.keySet())) + ")");
        }
        return p;
    }
}
