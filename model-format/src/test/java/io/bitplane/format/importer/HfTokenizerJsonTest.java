package io.bitplane.format.importer;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.format.BpmFormatException;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.SharedData;
import io.bitplane.format.Vocabulary;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hugging Face tokenizer.json (byte-level BPE) with its tokenizer_config.json, as Llama 3 ships them, on a small
 * vocabulary written here: GPT-2's 256 byte characters, the merges of pairs of common letters, and added tokens.
 */
class HfTokenizerJsonTest {
    @TempDir
    Path dir;

    static final String LETTERS = "etaoinshrdlu";

    /** GPT-2's printable stand-in for byte b (ByteLevelAlphabet's table, written out again). */
    static String byteChar(int b) {
        boolean printable = b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF;
        if (printable) {
            return String.valueOf((char) b);
        }
        int extra = 0;
        for (int c = 0; c < b; c++) {
            if (!(c >= '!' && c <= '~' || c >= 0xA1 && c <= 0xAC || c >= 0xAE && c <= 0xFF)) {
                extra++;
            }
        }
        return String.valueOf((char) (256 + extra));
    }

    /** Llama 3's layout: vocab and merges (as pairs), special and plain added tokens, BOS by the post-processor. */
    static ObjectNode llama3Style() {
        ObjectNode root = MetadataJson.newObject();
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").put("byte_fallback", false).put("ignore_merges", true);
        ObjectNode vocab = model.putObject("vocab");
        for (int b = 0; b < 256; b++) {
            vocab.put(byteChar(b), b);
        }
        ArrayNode merges = model.putArray("merges");
        int id = 256;
        for (char x : LETTERS.toCharArray()) {
            for (char y : LETTERS.toCharArray()) {
                if (x != y) {
                    vocab.put("" + x + y, id++);
                    merges.addArray().add("" + x).add("" + y);
                }
            }
        }
        ArrayNode added = root.putArray("added_tokens");
        added.addObject().put("id", id).put("content", "<|begin_of_text|>").put("special", true);
        added.addObject().put("id", id + 1).put("content", "<|eot_id|>").put("special", true);
        added.addObject().put("id", id + 2).put("content", "<tool>").put("special", false);
        ArrayNode steps = root.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
        steps.addObject().put("type", "Split").put("behavior", "Isolated").putObject("pattern")
                .put("Regex", HfTokenizerJson.LLAMA3_SPLIT);
        steps.addObject().put("type", "ByteLevel").put("use_regex", false);
        ArrayNode processors = root.putObject("post_processor").put("type", "Sequence").putArray("processors");
        processors.addObject().put("type", "ByteLevel");
        ArrayNode single = processors.addObject().put("type", "TemplateProcessing").putArray("single");
        single.addObject().putObject("SpecialToken").put("id", "<|begin_of_text|>").put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        return root;
    }

    static final int BOS = 256 + 132;

    private Path write(ObjectNode tokenizer, ObjectNode config) throws Exception {
        Path t = dir.resolve("tokenizer.json");
        Files.write(t, MetadataJson.mapper().writeValueAsBytes(tokenizer));
        if (config != null) {
            Files.write(dir.resolve("tokenizer_config.json"), MetadataJson.mapper().writeValueAsBytes(config));
        }
        return t;
    }

    private static ObjectNode config() {
        ObjectNode c = MetadataJson.newObject().put("bos_token", "<|begin_of_text|>").put("chat_template", "{{x}}");
        c.putObject("eos_token").put("content", "<|eot_id|>");
        return c;
    }

    @Test
    void readsALlama3StyleTokenizer() throws Exception {
        Vocabulary v = HfTokenizerJson.read(write(llama3Style(), config()), 512);
        assertEquals(Vocabulary.BYTE_LEVEL_BPE, v.model());
        assertEquals("llama-bpe", v.preTokenizer());
        assertEquals(512, v.size());
        assertEquals(132, v.merges().size());
        assertEquals("e t", v.merges().get(0));
        assertEquals("et", new String(v.tokens().get(256), StandardCharsets.UTF_8));
        assertEquals("Ġ", new String(v.tokens().get(' '), StandardCharsets.UTF_8));
        assertEquals(BOS, v.bosId());
        assertEquals(BOS + 1, v.eosId());
        assertTrue(v.addBos(), "the post-processor's template starts with BOS");
        assertEquals(Vocabulary.TYPE_CONTROL, v.tokenTypes()[BOS]);
        assertEquals(Vocabulary.TYPE_USER_DEFINED, v.tokenTypes()[BOS + 2]);
        assertEquals(Vocabulary.TYPE_UNUSED, v.tokenTypes()[511]);  // padded up to the model's 512 embeddings
        assertEquals(Vocabulary.TYPE_NORMAL, v.tokenTypes()[300]);
        assertEquals("{{x}}", v.chatTemplate());

        ObjectNode noBos = config().put("add_bos_token", false);
        assertFalse(HfTokenizerJson.read(write(llama3Style(), noBos), 512).addBos());
        // merges as "a b" strings read as pairs do; no tokenizer_config.json: no BOS or EOS known
        ObjectNode strings = llama3Style();
        ArrayNode merges = ((ObjectNode) strings.get("model")).putArray("merges");
        for (var m : llama3Style().get("model").get("merges")) {
            merges.add(m.get(0).asText() + " " + m.get(1).asText());
        }
        Files.deleteIfExists(dir.resolve("tokenizer_config.json"));
        Vocabulary s = HfTokenizerJson.read(write(strings, null), 512);
        assertEquals(v.merges(), s.merges());
        assertEquals(-1, s.bosId());
        assertFalse(s.addBos());
    }

    @Test
    void otherPreTokenizersAreRecognisedByTheirExpressions() throws Exception {
        ObjectNode qwen = llama3Style();
        ((ObjectNode) qwen.get("model")).put("ignore_merges", false);
        ((ObjectNode) qwen.get("pre_tokenizer").get("pretokenizers").get(0).get("pattern"))
                .put("Regex", HfTokenizerJson.QWEN2_SPLIT);
        assertEquals("qwen2", HfTokenizerJson.read(write(qwen, config()), 512).preTokenizer());
        ObjectNode gpt2 = llama3Style();
        ((ObjectNode) gpt2.get("model")).put("ignore_merges", false);
        gpt2.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false);
        assertEquals("gpt-2", HfTokenizerJson.read(write(gpt2, config()), 512).preTokenizer());
    }

    @Test
    void whatCannotBeReadIsNamed() throws Exception {
        assertRefused(t -> ((ObjectNode) t.get("model")).put("byte_fallback", true), "SentencePiece-style");
        assertRefused(t -> ((ObjectNode) t.get("model")).put("type", "WordPiece"), "model.type 'WordPiece'");
        assertRefused(t -> ((ObjectNode) t.get("pre_tokenizer").get("pretokenizers").get(0).get("pattern"))
                .put("Regex", "\\s+"), "pre_tokenizer [\\s+] is not one known here");
        assertRefused(t -> ((ObjectNode) t.get("model")).put("ignore_merges", false), "model.ignore_merges false");
        assertRefused(t -> ((ObjectNode) t.get("added_tokens").get(0)).put("id", 600), "id 600, outside");
        assertRefused(t -> ((ObjectNode) t.get("added_tokens").get(0)).put("id", 5), "id 5 is both");
        assertRefused(t -> ((ArrayNode) t.get("model").get("merges")).addArray().add("e").add("zz"),
                "merge 132 'e zz' joins texts that are not all tokens");
        Path t = write(llama3Style(), config().put("bos_token", "<s>"));
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> HfTokenizerJson.read(t, 512));
        assertEquals(dir.resolve("tokenizer_config.json") + ": bos_token '<s>' is not a token", e.getMessage());
        Files.writeString(t, "{not json");
        e = assertThrows(BpmFormatException.class, () -> HfTokenizerJson.read(t, 512));
        assertTrue(e.getMessage().startsWith(t + ": not valid JSON"), e.getMessage());
    }

    private void assertRefused(Consumer<ObjectNode> damage, String message) throws Exception {
        ObjectNode t = llama3Style();
        damage.accept(t);
        Path file = write(t, config());
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> HfTokenizerJson.read(file, 512));
        assertTrue(e.getMessage().startsWith(file.toString()) && e.getMessage().contains(message), e.getMessage());
    }

    /** A Hugging Face folder with tokenizer.json needs no --tokenizer; one given by name is read the same way. */
    @Test
    void aSafetensorsFolderTakesTheTokenizerBesideIt() throws Exception {
        Path hf = SafetensorsFixture.stories(dir.resolve("hf"));
        Files.write(hf.resolve("tokenizer.json"), MetadataJson.mapper().writeValueAsBytes(llama3Style()));
        Files.write(hf.resolve("tokenizer_config.json"), MetadataJson.mapper().writeValueAsBytes(config()));
        Vocabulary expected = HfTokenizerJson.read(hf.resolve("tokenizer.json"), 512);
        try (ModelSource s = ModelSources.open(hf, null)) {
            Vocabulary v = s.metadata().vocabulary();
            assertEquals(expected.merges(), v.merges());
            assertEquals(expected.bosId(), v.bosId());
            assertEquals("llama-bpe", v.preTokenizer());
        }
        try (ModelSource s = ModelSources.open(SharedData.stories260K(), hf.resolve("tokenizer.json"))) {
            assertEquals(Vocabulary.BYTE_LEVEL_BPE, s.metadata().vocabulary().model());
        }
    }
}
