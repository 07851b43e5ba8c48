package io.bitplane.runtime.tokenizer;

import io.bitplane.format.Vocabulary;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * A vocabulary's special tokens (control and user-defined) and where a text writes them: chat templates write them
 * as text ({@code <|eot_id|>}, {@code </s>}), and llama.cpp and Hugging Face read them as the tokens themselves.
 * Where several match at one place, the longest is taken.
 */
final class SpecialTokens {
    /** Texts, the longest first, by their first character. */
    private final Map<Character, List<String>> byFirstChar = new HashMap<>();
    private final Map<String, Integer> ids = new HashMap<>();

    /** A stretch of a text: ordinary text ({@code token} -1), or a special token's id (text null). */
    record Segment(String text, int token) {
    }

    /** @param text each token's text as the tokenizer reads it */
    SpecialTokens(Vocabulary vocab, IntFunction<String> text) {
        for (int i = 0; i < vocab.size(); i++) {
            int type = vocab.tokenTypes()[i];
            String t = text.apply(i);
            if ((type == Vocabulary.TYPE_CONTROL || type == Vocabulary.TYPE_USER_DEFINED) && !t.isEmpty()
                    && ids.putIfAbsent(t, i) == null) {
                byFirstChar.computeIfAbsent(t.charAt(0), c -> new ArrayList<>()).add(t);
            }
        }
        byFirstChar.values().forEach(l -> l.sort((a, b) -> b.length() - a.length()));
    }

    /** {@code text} cut at the special tokens it writes, in order; no ordinary segment is empty. */
    List<Segment> split(String text) {
        List<Segment> out = new ArrayList<>();
        int from = 0;
        for (int i = 0; i < text.length(); i++) {
            String special = at(text, i);
            if (special != null) {
                if (i > from) {
                    out.add(new Segment(text.substring(from, i), -1));
                }
                out.add(new Segment(null, ids.get(special)));
                i += special.length() - 1;
                from = i + 1;
            }
        }
        if (from < text.length()) {
            out.add(new Segment(text.substring(from), -1));
        }
        return out;
    }

    /** The longest special token's text that {@code text} holds at {@code at}, or null. */
    private String at(String text, int at) {
        List<String> candidates = byFirstChar.get(text.charAt(at));
        if (candidates != null) {
            for (String s : candidates) {
                if (text.startsWith(s, at)) {
                    return s;
                }
            }
        }
        return null;
    }
}
