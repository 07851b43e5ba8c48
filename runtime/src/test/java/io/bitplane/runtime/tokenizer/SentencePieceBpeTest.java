package io.bitplane.runtime.tokenizer;

import io.bitplane.format.SharedData;
import io.bitplane.format.Vocabulary;
import io.bitplane.format.importer.Llama2cTokenizerFile;
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

    @Test
    void badTokenIdsAreNamed() throws Exception {
        SentencePieceBpe t = tok512();
        var e = assertThrows(IllegalArgumentException.class, () -> t.piece(1, 512));
        assertEquals("token id 512 is outside the vocabulary of 512", e.getMessage());
    }
}
