package io.bitplane.runtime.tokenizer;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.bitplane.format.Vocabulary;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Any text through byte-level BPE vocabularies trained on ByteLevelBpeTest's corpus (each pre-tokenizer, a few
 * sizes): the ids are the scanning reference's, and decoding them gives the text back, less the control tokens
 * written in it (lone surrogates, which UTF-8 cannot hold, read as '?' both ways).
 */
class ByteLevelBpeFuzzTest {
    private static final String[] PRE = {"llama-bpe", "gpt-2", "qwen2"};
    private static final int[] MERGES = {1, 60, 400};
    private static final Map<String, Vocabulary> VOCABULARIES = new ConcurrentHashMap<>();

    @FuzzTest(maxDuration = "4m")
    void anyTextEncodesAsTheReferenceAndDecodesBack(FuzzedDataProvider data) {
        String pre = data.pickValue(PRE);
        int merges = MERGES[data.consumeInt(0, MERGES.length - 1)];
        Vocabulary v = VOCABULARIES.computeIfAbsent(pre + merges, k -> ByteLevelBpeTest.trained(merges, pre));
        String text = new String(data.consumeRemainingAsString().getBytes(StandardCharsets.UTF_8),
                StandardCharsets.UTF_8);
        ByteLevelBpe t = new ByteLevelBpe(v);
        int[] ids = t.encode(text, true, false);
        assertArrayEquals(ByteLevelBpeTest.reference(v, text), java.util.Arrays.copyOfRange(ids, 1, ids.length));
        assertEquals(withoutControlTokens(v, text), t.decode(ids));
    }

    /**
     * The text less the control tokens written in it, found left to right, the longest special token first (as
     * encoding splits them out: in "<|eo" + BOS + "t_id|>" only the BOS is one).
     */
    private static String withoutControlTokens(Vocabulary v, String text) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < text.length(); ) {
            int longest = -1;
            for (int id = 0; id < v.size(); id++) {
                int type = v.tokenTypes()[id];
                String s = new String(v.tokens().get(id), StandardCharsets.UTF_8);
                if ((type == Vocabulary.TYPE_CONTROL || type == Vocabulary.TYPE_USER_DEFINED) && text.startsWith(s, i)
                        && (longest < 0 || s.length() > v.tokens().get(longest).length)) {
                    longest = id;
                }
            }
            if (longest < 0) {
                out.append(text.charAt(i++));
            } else {
                String s = new String(v.tokens().get(longest), StandardCharsets.UTF_8);
                if (v.tokenTypes()[longest] == Vocabulary.TYPE_USER_DEFINED) {
                    out.append(s);
                }
                i += s.length();
            }
        }
        return out.toString();
    }
}
