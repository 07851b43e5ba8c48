package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;
import io.bitplane.format.SharedData;
import io.bitplane.format.Vocabulary;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SentencePiece tokenizer.model files, written here from stories260K's tokenizer (llama2.c exported tok512.bin from
 * such a model: the same pieces with "▁" for spaces, the same scores).
 */
public class SentencePieceModelFileTest {
    @TempDir
    Path dir;

    /** tok512.bin's vocabulary as the tokenizer.model it was exported from: pieces, scores, types. */
    public static Path tok512AsModel(Path file, int modelType, SentencePieceModelWriter.Normalizer n) throws Exception {
        Vocabulary bin = Llama2cTokenizerFile.read(SharedData.tok512(), 512);
        String[] pieces = new String[512];
        for (int i = 0; i < 512; i++) {
            pieces[i] = i == 1 ? "<s>" : i == 2 ? "</s>"
                    : new String(bin.tokens().get(i), StandardCharsets.UTF_8).replace(' ', '\u2581');
        }
        SentencePieceModelWriter.write(file, pieces, bin.scores(), bin.tokenTypes(), modelType, n);
        return file;
    }

    @Test
    void readsPiecesScoresTypesAndSpecialIds() throws Exception {
        Path model = tok512AsModel(dir.resolve("tokenizer.model"), 2, SentencePieceModelWriter.Normalizer.LLAMA);
        Vocabulary bin = Llama2cTokenizerFile.read(SharedData.tok512(), 512);
        Vocabulary v = SentencePieceModelFile.read(model, 512);
        assertEquals(Vocabulary.SENTENCE_PIECE, v.model());
        assertArrayEquals(bin.scores(), v.scores());
        assertArrayEquals(bin.tokenTypes(), v.tokenTypes());
        assertEquals("\u2581the", new String(v.tokens().get(Arrays.asList(bin.tokens().stream()
                .map(t -> new String(t, StandardCharsets.UTF_8)).toArray()).indexOf(" the")), StandardCharsets.UTF_8));
        assertEquals(1, v.bosId());
        assertEquals(2, v.eosId());
        assertTrue(v.addBos());
        // a model with more embeddings than pieces gets unused pads
        Vocabulary padded = SentencePieceModelFile.read(model, 520);
        assertEquals(520, padded.size());
        assertEquals(Vocabulary.TYPE_UNUSED, padded.tokenTypes()[519]);
        // tokenizer_config.json beside it gives BOS, EOS and the chat template
        Files.writeString(dir.resolve("tokenizer_config.json"),
                "{\"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\", \"chat_template\": \"{{x}}\"}");
        assertEquals("{{x}}", SentencePieceModelFile.read(model, 512).chatTemplate());
    }

    @Test
    void whatLlama2cEncodingCannotReproduceIsRefusedByName() throws Exception {
        Path unigram = tok512AsModel(dir.resolve("u.model"), 1, SentencePieceModelWriter.Normalizer.LLAMA);
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> SentencePieceModelFile.read(unigram, 512));
        assertEquals(unigram + ": SentencePiece model_type 1 (1 is unigram) is not supported; BPE models (2) are",
                e.getMessage());
        Path nfkc = tok512AsModel(dir.resolve("n.model"), 2,
                new SentencePieceModelWriter.Normalizer("nmt_nfkc", true, true));
        e = assertThrows(BpmFormatException.class, () -> SentencePieceModelFile.read(nfkc, 512));
        assertTrue(e.getMessage().contains("normalizer 'nmt_nfkc'"), e.getMessage());
        Path model = tok512AsModel(dir.resolve("t.model"), 2, SentencePieceModelWriter.Normalizer.LLAMA);
        e = assertThrows(BpmFormatException.class, () -> SentencePieceModelFile.read(model, 500));
        assertEquals(model + ": 512 pieces for a model of 500 embeddings (config.json vocab_size)", e.getMessage());
        byte[] all = Files.readAllBytes(model);
        Path cut = dir.resolve("cut.model");
        Files.write(cut, Arrays.copyOf(all, all.length / 2));
        e = assertThrows(BpmFormatException.class, () -> SentencePieceModelFile.read(cut, 512));
        assertTrue(e.getMessage().startsWith(cut + ": not a SentencePiece model, or damaged"), e.getMessage());
        Path tiktoken = dir.resolve("tiktoken.model");  // Llama 3's original/tokenizer.model is base64 lines
        Files.writeString(tiktoken, "IQ== 0\nIg== 1\n");
        e = assertThrows(BpmFormatException.class, () -> SentencePieceModelFile.read(tiktoken, 512));
        assertTrue(e.getMessage().startsWith(tiktoken + ": not a SentencePiece model, or damaged"), e.getMessage());
    }

    /** In a Hugging Face folder tokenizer.model goes before tokenizer.json (whose SentencePiece kind is refused). */
    @Test
    void aSafetensorsFolderTakesTheSentencePieceModelBesideIt() throws Exception {
        Path hf = SafetensorsFixture.stories(dir.resolve("hf"));
        tok512AsModel(hf.resolve("tokenizer.model"), 2, SentencePieceModelWriter.Normalizer.LLAMA);
        Files.writeString(hf.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true}}");
        try (ModelSource s = ModelSources.open(hf, null)) {
            assertEquals(Vocabulary.SENTENCE_PIECE, s.metadata().vocabulary().model());
            assertEquals(512, s.metadata().vocabulary().size());
        }
    }
}
