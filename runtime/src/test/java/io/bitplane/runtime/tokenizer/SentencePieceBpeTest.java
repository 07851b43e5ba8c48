package io.bitplane.runtime.tokenizer;

import io.bitplane.format.SharedData;
import io.bitplane.format.Vocabulary;
import io.bitplane.format.importer.Llama2cTokenizerFile;
import io.bitplane.format.importer.SentencePieceModelFileTest;
import io.bitplane.format.importer.SentencePieceModelWriter;
import io.bitplane.runtime.Perplexity;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SentencePieceBpeTest {

    static SentencePieceBpe tok512() throws Exception {
        return new SentencePieceBpe(Llama2cTokenizerFile.read(SharedData.tok512(), 512));
    }

    /** A vocabulary made by hand, so that each rule of llama2.c's encode is tested on its own. */
    static SentencePieceBpe tiny(boolean wordMarker) {
        String sp = wordMarker ? "\u2581" : " ";
        List<String> pieces = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        for (int b = 0; b < 256; b++) {
            pieces.add(String.format("<0x%02X>", b));
        }
        pieces.addAll(List.of(sp, "a", "b", "c", "ab", "bc", sp + "a", "abc", "é"));
        float[] scores = new float[pieces.size()];
        int base = 259;
        scores[base + 4] = -1; // ab
        scores[base + 5] = -0.5f; // bc: preferred over ab
        scores[base + 6] = -2; // " a"
        scores[base + 7] = -3; // abc
        List<byte[]> bytes = pieces.stream().map(p -> p.getBytes(StandardCharsets.UTF_8)).toList();
        return new SentencePieceBpe(new Vocabulary("llama", bytes, scores, Vocabulary.llama2cTypes(bytes), 1, 2, 8,
                null));
    }

    @Test
    void mergesTheBestScoredPairFirst() {
        SentencePieceBpe t = tiny(false);
        int space = 259;
        int a = 260;
        int bc = 264;
        // " abc": [" ", a, b, c] -> bc (-0.5) beats ab (-1) -> [" ", a, bc] -> " a" (-2) -> [" a", bc]; abc never
        // forms because "a"+"bc" is not adjacent any more after " a".
        assertArrayEquals(new int[] {1, 265, bc}, t.encode("abc", true, false));
        // " ab": "ab" (-1) beats " a" (-2), and " ab" is not a piece.
        assertArrayEquals(new int[] {space, 263}, t.encode("ab", false, false));
        assertEquals(260, a);
        assertArrayEquals(new int[] {1, 265, 2}, t.encode("a", true, true));
        assertArrayEquals(new int[0], t.encode("", false, false));
        assertArrayEquals(new int[] {1}, t.encode("", true, false), "no dummy prefix for empty text");
    }

    /**
     * Control tokens written in the text are those tokens, as llama.cpp reads a chat template's prompt (TinyLlama's
     * and Zephyr's write {@code </s>} after each turn): the text after one gets the dummy-prefix space again, as
     * after BOS; where none is written the encoding is llama2.c's.
     */
    @Test
    void specialTokensWrittenInTheTextAreThoseTokens() {
        SentencePieceBpe t = tiny(false);
        int[] a = t.encode("a", false, false);
        int[] bc = t.encode("bc", false, false);
        int[] want = java.util.stream.IntStream.concat(java.util.stream.IntStream.concat(
                java.util.Arrays.stream(a), java.util.stream.IntStream.of(2, 1)), java.util.Arrays.stream(bc))
                .toArray();
        assertArrayEquals(want, t.encode("a</s><s>bc", false, false));
        assertArrayEquals(new int[] {1, 2}, t.encode("</s>", true, false), "no text, no dummy prefix");
        assertEquals("abc", t.decode(t.encode("a</s>bc", false, false)).replace(" ", ""));
        // "<s" alone is no token: its characters (here byte tokens) as before.
        assertArrayEquals(llama2cEncode(t.vocabulary(), "a<s b", false), t.encode("a<s b", false, false));
    }

    @Test
    void unknownCodePointsFallBackToByteTokens() {
        SentencePieceBpe t = tiny(false);
        // "€" is E2 82 AC, not in the vocabulary: three byte tokens (byte + 3); "é" is.
        assertArrayEquals(new int[] {259, 0xE2 + 3, 0x82 + 3, 0xAC + 3, 267}, t.encode("€é", false, false));
        assertEquals("€é", t.decode(t.encode("€é", true, false)));
    }

    @Test
    void ggufWordMarkerVocabulariesEncodeAndDecodeSpaces() {
        SentencePieceBpe t = tiny(true);
        int[] ids = t.encode("a a", true, false);
        assertArrayEquals(new int[] {1, 265, 265}, ids);
        assertEquals("a a", t.decode(ids));
    }

    @Test
    void roundTripsTheValidationText() throws Exception {
        SentencePieceBpe t = tok512();
        List<String> paragraphs = Perplexity.paragraphs(Files.readString(
                SharedData.file("data/tinystories_validation_head.txt")));
        for (String p : paragraphs.subList(0, 1000)) {
            assertEquals(p, t.decode(t.encode(p, true, false)), p);
        }
        String odd = "Ünïcödé — “quotes” 世界 🙂 tabs\tand\nnewlines";
        assertEquals(odd, t.decode(t.encode(odd, true, false)));
    }

    /**
     * The tokenizer.model llama2.c exported tok512.bin from (written back from it: "▁" for spaces) encodes the same:
     * its pieces take the word-marker path, as GGUF vocabularies do. (Against SentencePiece itself, the library
     * compiled to WebAssembly as the npm package @sctg/sentencepiece-js 1.3.3, that file gave the same ids for 308
     * texts, 29,399 tokens: tools/tokenizer-check.)
     */
    @Test
    void aSentencePieceModelEncodesAsItsLlama2cExport(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        java.nio.file.Path model = SentencePieceModelFileTest.tok512AsModel(dir.resolve("tokenizer.model"), 2,
                SentencePieceModelWriter.Normalizer.LLAMA);
        SentencePieceBpe fromModel = new SentencePieceBpe(
                io.bitplane.format.importer.SentencePieceModelFile.read(model, 512));
        SentencePieceBpe fromBin = tok512();
        List<String> paragraphs = Perplexity.paragraphs(Files.readString(
                SharedData.file("data/tinystories_validation_head.txt")));
        for (String p : paragraphs.subList(0, 300)) {
            int[] ids = fromModel.encode(p, true, false);
            assertArrayEquals(fromBin.encode(p, true, false), ids, p);
            assertEquals(p, fromModel.decode(ids), p);
        }
    }

    @Test
    void encodesAsLlama2cDoes() throws Exception {
        SentencePieceBpe t = tok512();
        // llama2.c: BOS, the dummy-prefix merges into " Once", then BPE merges.
        int[] ids = t.encode("Once upon a time", true, false);
        assertEquals(1, ids[0]);
        assertEquals(" Once upon a time", new String(concat(t, ids), StandardCharsets.UTF_8));
        // The greedy output of llama2.c starts with tokens 403 407 261 378 ("Once upon a time" after BOS):
        // re-encoding that text gives the same ids, as llama2.c's encoder does.
        assertArrayEquals(new int[] {1, 403, 407, 261, 378}, ids);
    }

    private static byte[] concat(SentencePieceBpe t, int[] ids) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int i = 1; i < ids.length; i++) {
            out.writeBytes(t.piece(-1, ids[i]));
        }
        return out.toByteArray();
    }

    /**
     * llama2.c's encode as it is written (a scan of every adjacent pair for every merge, the leftmost best taken), the
     * oracle for the tokenizer's queue of pairs; byte fallback as llama2.c's (byte b is token b + 3).
     */
    static int[] llama2cEncode(Vocabulary v, String text, boolean bos) {
        java.util.Map<String, Integer> ids = new java.util.HashMap<>();
        for (int i = 0; i < v.size(); i++) {
            ids.putIfAbsent(new String(v.tokens().get(i), StandardCharsets.ISO_8859_1), i);
        }
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        List<Integer> tokens = new ArrayList<>();
        if (bos) {
            tokens.add(1);
        }
        if (utf8.length > 0 && ids.containsKey(" ")) {
            tokens.add(ids.get(" "));
        }
        for (int i = 0; i < utf8.length; ) {
            int start = i++;
            while (i < utf8.length && (utf8[i] & 0xC0) == 0x80 && i - start < 4) {
                i++;
            }
            Integer id = ids.get(new String(utf8, start, i - start, StandardCharsets.ISO_8859_1));
            if (id != null) {
                tokens.add(id);
            } else {
                for (int b = start; b < i; b++) {
                    tokens.add((utf8[b] & 0xFF) + 3);
                }
            }
        }
        while (true) {
            float bestScore = -1e10f;
            int bestId = -1;
            int bestIdx = -1;
            for (int i = 0; i + 1 < tokens.size(); i++) {
                String merged = new String(v.tokens().get(tokens.get(i)), StandardCharsets.ISO_8859_1)
                        + new String(v.tokens().get(tokens.get(i + 1)), StandardCharsets.ISO_8859_1);
                Integer id = ids.get(merged);
                if (id != null && v.scores()[id] > bestScore) {
                    bestScore = v.scores()[id];
                    bestId = id;
                    bestIdx = i;
                }
            }
            if (bestIdx < 0) {
                return tokens.stream().mapToInt(Integer::intValue).toArray();
            }
            tokens.set(bestIdx, bestId);
            tokens.remove(bestIdx + 1);
        }
    }

    /** Random vocabularies over a few letters, with tied and unusable scores, against llama2.c's loop. */
    @Test
    void mergesAsLlama2csScanOverRandomVocabulariesAndTexts() {
        java.util.Random rnd = new java.util.Random(7);
        float[] scoreChoices = {-1, -1, -2, -3.5f, 0, -0f, -1e11f, Float.NaN, Float.NEGATIVE_INFINITY};
        for (int round = 0; round < 200; round++) {
            List<String> pieces = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
            for (int b = 0; b < 256; b++) {
                pieces.add(String.format("<0x%02X>", b));
            }
            pieces.add(" ");
            String letters = "ab c";
            int extra = 5 + rnd.nextInt(40);
            for (int i = 0; i < extra; i++) {
                StringBuilder p = new StringBuilder();
                for (int len = 1 + rnd.nextInt(4); len > 0; len--) {
                    p.append(letters.charAt(rnd.nextInt(letters.length())));
                }
                pieces.add(p.toString());  // duplicates too: the first id of a piece wins, in both
            }
            float[] scores = new float[pieces.size()];
            for (int i = 0; i < scores.length; i++) {
                scores[i] = scoreChoices[rnd.nextInt(scoreChoices.length)];
            }
            List<byte[]> bytes = pieces.stream().map(p -> p.getBytes(StandardCharsets.UTF_8)).toList();
            Vocabulary v = new Vocabulary("llama", bytes, scores, Vocabulary.llama2cTypes(bytes), 1, 2, 8, null);
            SentencePieceBpe t = new SentencePieceBpe(v);
            for (int text = 0; text < 20; text++) {
                StringBuilder sb = new StringBuilder();
                for (int len = rnd.nextInt(60); len > 0; len--) {
                    sb.append((letters + "dé").charAt(rnd.nextInt(letters.length() + 2)));
                }
                String s = sb.toString();
                assertArrayEquals(llama2cEncode(v, s, true), t.encode(s, true, false), "round " + round + ": " + s);
            }
        }
    }

    @Test
    void encodesTheValidationTextAsLlama2csScan() throws Exception {
        SentencePieceBpe t = tok512();
        Vocabulary v = Llama2cTokenizerFile.read(SharedData.tok512(), 512);
        List<String> paragraphs = Perplexity.paragraphs(Files.readString(
                SharedData.file("data/tinystories_validation_head.txt")));
        for (String p : paragraphs.subList(0, 200)) {
            assertArrayEquals(llama2cEncode(v, p, true), t.encode(p, true, false), p);
        }
    }

    @Test
    void aCharacterWithoutByteTokensIsTheUnknownTokenOrRefused() {
        List<byte[]> bytes = java.util.stream.Stream.of("<unk>", "<s>", "</s>", " ", "a")
                .map(p -> p.getBytes(StandardCharsets.UTF_8)).toList();
        float[] scores = new float[bytes.size()];
        SentencePieceBpe withUnknown = new SentencePieceBpe(new Vocabulary("llama", bytes, scores,
                Vocabulary.llama2cTypes(bytes), 1, 2, 8, null));
        assertArrayEquals(new int[] {1, 3, 4, 0, 4}, withUnknown.encode("a\u20ACa", true, false));
        int[] noUnknown = Vocabulary.llama2cTypes(bytes);
        noUnknown[0] = Vocabulary.TYPE_CONTROL;
        SentencePieceBpe without = new SentencePieceBpe(new Vocabulary("llama", bytes, scores, noUnknown, 1, 2, 8,
                null));
        var e = assertThrows(IllegalArgumentException.class, () -> without.encode("a\u20ACa", true, false));
        assertEquals("the vocabulary has no token for '\u20AC' (no byte tokens and no unknown token)", e.getMessage());
    }

    @Test
    void badTokenIdsAreNamed() throws Exception {
        SentencePieceBpe t = tok512();
        var e = assertThrows(IllegalArgumentException.class, () -> t.piece(1, 512));
        assertEquals("token id 512 is outside the vocabulary of 512", e.getMessage());
    }
}
