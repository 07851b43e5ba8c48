package io.bitplane.format.importer;

import com.fasterxml.jackson.databind.JsonNode;
import io.bitplane.format.BpmFormatException;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.Vocabulary;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json} of byte-level BPE (Llama 3, Qwen2, GPT-2), with the {@code
 * tokenizer_config.json} beside it (BOS and EOS tokens, whether BOS is added, the chat template), read into the
 * vocabulary GGUF's "gpt2" tokenizer holds: tokens by id (the model's vocab and the added tokens: special ones are
 * control tokens, others user-defined), merges in rank order, and the pre-tokenizer named as llama.cpp names it,
 * recognised by its expression. A vocabulary shorter than the model's embedding is padded with unused tokens, as
 * llama.cpp's converter does. SentencePiece-style tokenizer.json files (byte fallback, "▁" for spaces) are refused
 * by name: their tokenizer.model ({@link SentencePieceModelFile}) holds the scores that merge them.
 */
public final class HfTokenizerJson {
    private HfTokenizerJson() {
    }

    /** Llama 3's split expression in tokenizer.json. */
    static final String LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    /** Qwen2's: digits one by one. */
    static final String QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /**
     * Reads {@code tokenizerJson} for a model of {@code vocabSize} embeddings.
     *
     * @throws BpmFormatException naming the file and field at fault, or what is not supported
     */
    public static Vocabulary read(Path tokenizerJson, int vocabSize) throws IOException {
        JsonNode root = json(tokenizerJson);
        JsonNode model = root.path("model");
        String where = tokenizerJson.toString();
        if (!"BPE".equals(model.path("type").asText())) {
            throw new BpmFormatException(where + ": model.type '" + model.path("type").asText()
                    + "' is not supported (byte-level BPE is)");
        }
        String steps = root.path("normalizer").toString() + root.path("pre_tokenizer") + root.path("decoder");
        if (model.path("byte_fallback").asBoolean(false) || steps.contains("\"Metaspace\"")) {
            throw new BpmFormatException(where + ": a SentencePiece-style tokenizer.json (byte fallback, Metaspace) "
                    + "lacks the scores that merge it; use the model's tokenizer.model (beside it, or --tokenizer)");
        }
        String pre = preTokenizer(where, root.path("pre_tokenizer"));
        boolean ignoresMerges = model.path("ignore_merges").asBoolean(false);
        if (ignoresMerges != pre.equals("llama-bpe")) {
            throw new BpmFormatException(where + ": model.ignore_merges " + ignoresMerges + " with pre-tokenizer "
                    + pre + " is not supported (Llama 3's takes words whole, the others do not)");
        }
        String[] texts = new String[vocabSize];
        int[] types = new int[vocabSize];
        JsonNode vocab = model.path("vocab");
        if (!vocab.isObject()) {
            throw new BpmFormatException(where + ": model.vocab is not an object");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            place(where, texts, types, e.getValue().asInt(-1), e.getKey(), Vocabulary.TYPE_NORMAL, "model.vocab");
        }
        for (JsonNode t : root.path("added_tokens")) {
            int type = t.path("special").asBoolean(false) ? Vocabulary.TYPE_CONTROL : Vocabulary.TYPE_USER_DEFINED;
            place(where, texts, types, t.path("id").asInt(-1), t.path("content").asText(), type, "added_tokens");
        }
        List<byte[]> tokens = new ArrayList<>(vocabSize);
        int maxLen = 0;
        for (int i = 0; i < vocabSize; i++) {
            if (texts[i] == null) {  // llama.cpp's padding of a vocabulary shorter than the embedding
                texts[i] = "[PAD" + i + "]";
                types[i] = Vocabulary.TYPE_UNUSED;
            }
            byte[] b = texts[i].getBytes(StandardCharsets.UTF_8);
            tokens.add(b);
            maxLen = Math.max(maxLen, b.length);
        }
        List<String> merges = new ArrayList<>();
        for (JsonNode m : model.path("merges")) {
            if (m.isTextual()) {
                merges.add(m.asText());
            } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
                merges.add(m.get(0).asText() + " " + m.get(1).asText());
            } else {
                throw new BpmFormatException(where + ": model.merges[" + merges.size() + "] is neither \"a b\" nor "
                        + "[\"a\", \"b\"]");
            }
        }
        Config tc = Config.beside(tokenizerJson, texts);
        boolean addBos = tc.addBosOr(tc.bos() >= 0 && Config.templateStartsWith(root.path("post_processor"),
                texts[tc.bos()]));
        Vocabulary v = new Vocabulary(Vocabulary.BYTE_LEVEL_BPE, tokens, new float[vocabSize], types, tc.bos(),
                tc.eos(), maxLen, tc.chatTemplate(), merges, pre, addBos);
        String problem = v.problem();
        if (problem != null) {
            throw new BpmFormatException(where + ": " + problem);
        }
        return v;
    }

    private static void place(String where, String[] texts, int[] types, int id, String text, int type, String field)
            throws BpmFormatException {
        if (id < 0 || id >= texts.length) {
            throw new BpmFormatException(where + ": " + field + " gives '" + text + "' id " + id + ", outside the "
                    + "model's vocabulary of " + texts.length + " (config.json vocab_size)");
        }
        if (texts[id] != null && !texts[id].equals(text)) {
            throw new BpmFormatException(where + ": id " + id + " is both '" + texts[id] + "' and '" + text + "'");
        }
        texts[id] = text;
        types[id] = type;  // added tokens come after the vocab: one listed in both takes its added type
    }

    /** The llama.cpp name of the pre-tokenizer: by its split expression, or GPT-2's where ByteLevel splits. */
    private static String preTokenizer(String where, JsonNode pre) throws BpmFormatException {
        List<JsonNode> steps = new ArrayList<>();
        if ("Sequence".equals(pre.path("type").asText())) {
            pre.path("pretokenizers").forEach(steps::add);
        } else if (!pre.isMissingNode() && !pre.isNull()) {
            steps.add(pre);
        }
        List<String> splits = new ArrayList<>();
        boolean byteLevelSplits = false;
        for (JsonNode s : steps) {
            switch (s.path("type").asText()) {
                case "Split" -> splits.add(s.path("pattern").path("Regex").asText(null));
                case "ByteLevel" -> byteLevelSplits = s.path("use_regex").asBoolean(true);
                default -> throw new BpmFormatException(where + ": pre_tokenizer step '" + s.path("type").asText()
                        + "' is not supported");
            }
        }
        if (splits.isEmpty() && byteLevelSplits) {
            return "gpt-2";
        }
        if (splits.size() == 1 && !byteLevelSplits) {
            if (LLAMA3_SPLIT.equals(splits.get(0))) {
                return "llama-bpe";
            }
            if (QWEN2_SPLIT.equals(splits.get(0))) {
                return "qwen2";
            }
        }
        throw new BpmFormatException(where + ": pre_tokenizer " + splits + " is not one known here (Llama 3's, "
                + "Qwen2's, GPT-2's)");
    }

    static JsonNode json(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        try {
            return MetadataJson.mapper().readTree(bytes);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new BpmFormatException(file + ": not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {  // bytes Jackson takes for UTF-32 and cannot decode
            throw new BpmFormatException(file + ": not valid JSON: " + e.getMessage());
        }
    }

    /**
     * What a Hugging Face tokenizer_config.json beside a tokenizer file says (all unknown when there is none): the
     * ids of its BOS and EOS tokens (-1), whether BOS is added (null), the chat template (null).
     */
    record Config(int bos, int eos, Boolean addBos, String chatTemplate) {
        boolean addBosOr(boolean fallback) {
            return addBos != null ? addBos : fallback;
        }

        static Config beside(Path tokenizerFile, String[] texts) throws IOException {
            Path file = tokenizerFile.resolveSibling("tokenizer_config.json");
            if (!Files.isRegularFile(file)) {
                return new Config(-1, -1, null, null);
            }
            JsonNode c = json(file);
            String where = file.toString();
            int bos = id(where, texts, c.path("bos_token"), "bos_token");
            int eos = id(where, texts, c.path("eos_token"), "eos_token");
            Boolean addBos = c.path("add_bos_token").isBoolean() ? c.path("add_bos_token").asBoolean() : null;
            JsonNode t = c.path("chat_template");
            String template = t.isTextual() ? t.asText() : null;
            if (t.isArray()) {  // named templates: the default one
                for (JsonNode named : t) {
                    if ("default".equals(named.path("name").asText())) {
                        template = named.path("template").asText(null);
                    }
                }
            }
            return new Config(bos, eos, addBos, template);
        }

        /** Whether the post-processor's template for one sequence starts with this special token (Llama 3's). */
        static boolean templateStartsWith(JsonNode processor, String token) {
            if ("Sequence".equals(processor.path("type").asText())) {
                for (JsonNode p : processor.path("processors")) {
                    if (templateStartsWith(p, token)) {
                        return true;
                    }
                }
                return false;
            }
            return "TemplateProcessing".equals(processor.path("type").asText())
                    && token.equals(processor.path("single").path(0).path("SpecialToken").path("id").asText(null));
        }

        /** The id of a token given as its text or as {"content": text}; -1 when not given. */
        private static int id(String where, String[] texts, JsonNode token, String field)
                throws BpmFormatException {
            String text = token.isTextual() ? token.asText() : token.path("content").asText(null);
            if (text == null) {
                return -1;
            }
            int id = Arrays.asList(texts).indexOf(text);
            if (id < 0) {
                throw new BpmFormatException(where + ": " + field + " '" + text + "' is not a token");
            }
            return id;
        }
    }
}
