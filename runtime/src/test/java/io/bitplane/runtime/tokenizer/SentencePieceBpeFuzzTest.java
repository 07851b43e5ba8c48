package io.bitplane.runtime.tokenizer;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.bitplane.format.Vocabulary;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Any vocabulary a model file can hold (pieces of any bytes, empty or repeated; any scores, NaN included; any token
 * types) and any text: encoding gives token ids inside the vocabulary or refuses the text with an
 * IllegalArgumentException that names a character, and decoding those ids gives text.
 */
class SentencePieceBpeFuzzTest {
    private static final int[] TYPES = {Vocabulary.TYPE_NORMAL, Vocabulary.TYPE_UNKNOWN, Vocabulary.TYPE_CONTROL,
            Vocabulary.TYPE_BYTE, 4, 5};

    @FuzzTest(maxDuration = "4m")
    void anyVocabularyAndText(FuzzedDataProvider data) {
        int size = data.consumeInt(3, 300);
        List<byte[]> tokens = new ArrayList<>();
        float[] scores = new float[size];
        int[] types = new int[size];
        for (int i = 0; i < size; i++) {
            tokens.add(data.consumeBytes(data.consumeInt(0, 8)));
            scores[i] = data.consumeFloat();
            types[i] = data.pickValue(TYPES);
        }
        SentencePieceBpe t = new SentencePieceBpe(new Vocabulary("llama", tokens, scores, types, 1, 2, 8, null));
        int[] ids;
        try {
            ids = t.encode(data.consumeRemainingAsString(), true, false);
        } catch (IllegalArgumentException refused) {
            assertTrue(refused.getMessage().startsWith("the vocabulary has no token for"), refused.getMessage());
            return;
        }
        for (int id : ids) {
            assertTrue(id >= 0 && id < size, "token id " + id);
        }
        t.decode(ids);
    }
}
