package io.bitplane.format;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/** Reads and writes {@link ModelMetadata} as the JSON of FORMAT.md section 3; errors name the field at fault. */
public final class MetadataJson {
    private MetadataJson() {
    }

    static final ObjectMapper MAPPER = new ObjectMapper();

    static {
        // Metadata holds a whole vocabulary: allow long documents, but keep nesting shallow.
        MAPPER.getFactory().setStreamReadConstraints(StreamReadConstraints.builder()
                .maxNestingDepth(64).maxStringLength(64 << 20).maxDocumentLength(256L << 20).build());
    }

    public static ObjectNode newObject() {
        return JsonNodeFactory.instance.objectNode();
    }

    public static ObjectMapper mapper() {
        return MAPPER;
    }

    public static byte[] write(ModelMetadata m) {
        ObjectNode root = newObject();
        root.put("architecture", m.architecture());
        ModelConfig c = m.config();
        ObjectNode cfg = root.putObject("config");
        cfg.put("dim", c.dim());
        cfg.put("hidden_dim", c.hiddenDim());
        cfg.put("n_layers", c.nLayers());
        cfg.put("n_heads", c.nHeads());
        cfg.put("n_kv_heads", c.nKvHeads());
        cfg.put("vocab_size", c.vocabSize());
        cfg.put("context_length", c.contextLength());
        cfg.put("rope_theta", c.ropeTheta());
        cfg.put("rms_norm_eps", c.rmsNormEps());
        cfg.put("tied_embeddings", c.tiedEmbeddings());
        if (c.attentionBias()) {  // absent means false: files before it have no biases
            cfg.put("attention_bias", true);
        }
        if (c.headDim() > 0) {  // absent means dim / n_heads
            cfg.put("head_dim", c.headDim());
        }
        if (c.qkNorm()) {
            cfg.put("qk_norm", true);
        }
        if (c.ropeFreqFactors() != null) {
            ArrayNode factors = cfg.putArray("rope_freq_factors");
            for (float f : c.ropeFreqFactors()) {
                factors.add(f);
            }
        }
        Vocabulary v = m.vocabulary();
        if (v != null) {
            ObjectNode tok = root.putObject("tokenizer");
            tok.put("model", v.model());
            ArrayNode tokens = tok.putArray("tokens");
            for (byte[] t : v.tokens()) {
                String s = utf8OrNull(t);
                if (s != null) {
                    tokens.add(s);
                } else {
                    tokens.addObject().put("hex", HexFormat.of().formatHex(t));
                }
            }
            ArrayNode scores = tok.putArray("scores");
            for (float s : v.scores()) {
                scores.add(s);
            }
            ArrayNode types = tok.putArray("token_types");
            for (int t : v.tokenTypes()) {
                types.add(t);
            }
            tok.put("bos_id", v.bosId());
            tok.put("eos_id", v.eosId());
            tok.put("max_token_length", v.maxTokenLength());
            if (v.chatTemplate() != null) {
                tok.put("chat_template", v.chatTemplate());
            }
            if (!v.merges().isEmpty()) {
                ArrayNode merges = tok.putArray("merges");
                v.merges().forEach(merges::add);
            }
            if (v.preTokenizer() != null) {
                tok.put("pre", v.preTokenizer());
            }
            if (!v.addBos()) {
                tok.put("add_bos", false);
            }
        }
        root.set("quantization", m.quantization() == null ? newObject() : m.quantization());
        root.set("source", m.source() == null ? newObject() : m.source());
        String version = MetadataJson.class.getPackage().getImplementationVersion();
        root.put("created_by", "bitplane " + (version == null ? "(development build)" : version));
        try {
            return MAPPER.writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses metadata; {@code where} (the file) starts every error message. */
    public static ModelMetadata read(byte[] json, String where) throws BpmFormatException {
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new BpmFormatException(where + ": metadata is not valid JSON: " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw new BpmFormatException(where + ": metadata cannot be read: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw new BpmFormatException(where + ": metadata is not a JSON object");
        }
        Fields f = new Fields(where);
        String arch = f.text(root, "architecture");
        JsonNode cfg = f.object(root, "config");
        ModelConfig config = new ModelConfig(f.integer(cfg, "config.dim"), f.integer(cfg, "config.hidden_dim"),
                f.integer(cfg, "config.n_layers"), f.integer(cfg, "config.n_heads"),
                f.integer(cfg, "config.n_kv_heads"), f.integer(cfg, "config.vocab_size"),
                f.integer(cfg, "config.context_length"), (float) f.number(cfg, "config.rope_theta"),
                (float) f.number(cfg, "config.rms_norm_eps"), f.bool(cfg, "config.tied_embeddings"),
                cfg.has("rope_freq_factors") ? floats(f.array(cfg, "config.rope_freq_factors"), where,
                        "config.rope_freq_factors") : null,
                cfg.has("attention_bias") && f.bool(cfg, "config.attention_bias"),
                cfg.has("head_dim") ? f.integer(cfg, "config.head_dim") : 0,
                cfg.has("qk_norm") && f.bool(cfg, "config.qk_norm"));
        String problem = config.problem();
        if (problem != null) {
            throw new BpmFormatException(where + ": metadata config: " + problem);
        }
        Vocabulary vocab = null;
        if (root.has("tokenizer")) {
            JsonNode tok = f.object(root, "tokenizer");
            JsonNode tokens = f.array(tok, "tokenizer.tokens");
            List<byte[]> list = new ArrayList<>(tokens.size());
            for (JsonNode t : tokens) {
                if (t.isTextual()) {
                    list.add(t.asText().getBytes(StandardCharsets.UTF_8));
                } else if (t.isObject() && t.path("hex").isTextual()) {
                    try {
                        list.add(HexFormat.of().parseHex(t.path("hex").asText()));
                    } catch (IllegalArgumentException e) {
                        throw new BpmFormatException(where + ": metadata tokenizer.tokens[" + list.size()
                                + "]: bad hex");
                    }
                } else {
                    throw new BpmFormatException(where + ": metadata tokenizer.tokens[" + list.size()
                            + "] is neither a string nor {\"hex\": ...}");
                }
            }
            JsonNode scores = f.array(tok, "tokenizer.scores");
            float[] s = new float[scores.size()];
            for (int i = 0; i < s.length; i++) {
                s[i] = (float) scores.get(i).asDouble();
            }
            JsonNode types = f.array(tok, "tokenizer.token_types");
            int[] ty = new int[types.size()];
            for (int i = 0; i < ty.length; i++) {
                ty[i] = types.get(i).asInt();
            }
            String template = tok.path("chat_template").isTextual() ? tok.get("chat_template").asText() : null;
            List<String> merges = new ArrayList<>();
            if (tok.has("merges")) {
                for (JsonNode m : f.array(tok, "tokenizer.merges")) {
                    if (!m.isTextual()) {
                        throw new BpmFormatException(where + ": metadata tokenizer.merges[" + merges.size()
                                + "] is not a string");
                    }
                    merges.add(m.asText());
                }
            }
            String pre = tok.has("pre") ? f.text(tok, "tokenizer.pre") : null;
            boolean addBos = !tok.has("add_bos") || f.bool(tok, "tokenizer.add_bos");
            vocab = new Vocabulary(f.text(tok, "tokenizer.model"), list, s, ty, f.integer(tok, "tokenizer.bos_id"),
                    f.integer(tok, "tokenizer.eos_id"), f.integer(tok, "tokenizer.max_token_length"), template,
                    merges, pre, addBos);
            problem = vocab.problem();
            if (problem != null) {
                throw new BpmFormatException(where + ": metadata tokenizer: " + problem);
            }
        }
        ObjectNode q = root.path("quantization") instanceof ObjectNode o ? o : newObject();
        ObjectNode src = root.path("source") instanceof ObjectNode o ? o : newObject();
        return new ModelMetadata(arch, config, vocab, q, src);
    }

    private static float[] floats(JsonNode array, String where, String path) throws BpmFormatException {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) {
            if (!array.get(i).isNumber()) {
                throw new BpmFormatException(where + ": metadata field " + path + "[" + i + "] is not a number");
            }
            out[i] = (float) array.get(i).asDouble();
        }
        return out;
    }

    /** The text of these bytes when they are valid UTF-8, else null. */
    static String utf8OrNull(byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    /** Typed field access whose errors say which field of which file is missing or of the wrong type. */
    private record Fields(String where) {
        private JsonNode get(JsonNode node, String path) throws BpmFormatException {
            JsonNode n = node.get(path.substring(path.lastIndexOf('.') + 1));
            if (n == null || n.isNull()) {
                throw new BpmFormatException(where + ": metadata field " + path + " is missing");
            }
            return n;
        }

        String text(JsonNode node, String path) throws BpmFormatException {
            JsonNode n = get(node, path);
            if (!n.isTextual()) {
                throw new BpmFormatException(where + ": metadata field " + path + " must be a string");
            }
            return n.asText();
        }

        int integer(JsonNode node, String path) throws BpmFormatException {
            JsonNode n = get(node, path);
            if (!n.isIntegralNumber() || !n.canConvertToInt()) {
                throw new BpmFormatException(where + ": metadata field " + path + " must be a 32-bit integer");
            }
            return n.asInt();
        }

        double number(JsonNode node, String path) throws BpmFormatException {
            JsonNode n = get(node, path);
            if (!n.isNumber()) {
                throw new BpmFormatException(where + ": metadata field " + path + " must be a number");
            }
            return n.asDouble();
        }

        boolean bool(JsonNode node, String path) throws BpmFormatException {
            JsonNode n = get(node, path);
            if (!n.isBoolean()) {
                throw new BpmFormatException(where + ": metadata field " + path + " must be true or false");
            }
            return n.asBoolean();
        }

        JsonNode object(JsonNode node, String path) throws BpmFormatException {
            JsonNode n = get(node, path);
            if (!n.isObject()) {
                throw new BpmFormatException(where + ": metadata field " + path + " must be an object");
            }
            return n;
        }

        JsonNode array(JsonNode node, String path) throws BpmFormatException {
            JsonNode n = get(node, path);
            if (!n.isArray()) {
                throw new BpmFormatException(where + ": metadata field " + path + " must be an array");
            }
            return n;
        }
    }
}
