package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.ModelMetadata;
import io.bitplane.format.Vocabulary;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * GGUF models of the llama and qwen2 architectures, in llama.cpp's tensor naming (the .bpm naming too), with the
 * {@code tokenizer.ggml.*} vocabulary. Low-bit tensors keep their exact values where .bpm can hold them (see
 * {@link GgmlToBpm}).
 *
 * <p>Qwen2 is a Llama with biases on the q, k and v projections ({@code blk.N.attn_q.bias} ...), whose keys start
 * {@code qwen2.} and whose q and k rows (and biases) are in Hugging Face's rotary order: llama.cpp rotates the two
 * halves of a head together for it ("NEOX" rope), where for llama its converter permuted the rows to adjacent
 * pairs. The importer moves qwen2's rows to adjacent pairs, as the safetensors importer does ({@link RotaryOrder}).
 * Qwen3 is Qwen2 without the biases, with an RMSNorm of each head of q and k before the rotation
 * ({@code blk.N.attn_q_norm.weight}, {@code attn_k_norm}: their values move with the rows) and heads whose size
 * ({@code qwen3.attention.key_length}) need not be {@code embedding_length / head_count}.
 */
public final class GgufImporter {
    private GgufImporter() {
    }

    /** The general.architecture values imported. */
    static final List<String> ARCHITECTURES = List.of("llama", "qwen2", "qwen3");

    /** {@code tokenizer} (may be null) replaces the file's tokenizer.ggml vocabulary, or supplies one. */
    public static ModelSource open(Path path, Path tokenizer) throws IOException {
        GgufFile g = GgufFile.open(path);
        try {
            return read(g, tokenizer);
        } catch (IOException | RuntimeException e) {
            g.close();
            throw e;
        }
    }

    private static ModelSource read(GgufFile g, Path tokenizer) throws IOException {
        Map<String, Object> kv = g.metadata();
        Keys k = new Keys(g.path(), kv);
        String arch = k.text("general.architecture");
        if (!ARCHITECTURES.contains(arch)) {
            throw new BpmFormatException(g.path() + ": general.architecture is '" + arch
                    + "'; only llama-family models are supported (" + String.join(", ", ARCHITECTURES) + ")");
        }
        String p = arch + ".";  // the keys of a model's hyper-parameters start with its architecture's name
        Vocabulary vocab = vocabulary(g.path(), k);
        int heads = k.integer(p + "attention.head_count", -1);
        int dim = k.integer(p + "embedding_length", -1);
        int vocabSize = vocab != null ? vocab.size() : k.integer(p + "vocab_size", -1);
        if (kv.containsKey(p + "vocab_size") && vocab != null && k.integer(p + "vocab_size", -1) != vocabSize) {
            throw new BpmFormatException(g.path() + ": " + p + "vocab_size disagrees with the "
                    + vocabSize + " tokens of tokenizer.ggml.tokens");
        }
        ModelConfig config = new ModelConfig(dim, k.integer(p + "feed_forward_length", -1),
                k.integer(p + "block_count", -1), heads, k.integer(p + "attention.head_count_kv", heads),
                vocabSize, k.integer(p + "context_length", -1),
                (float) k.number(p + "rope.freq_base", 10000),
                (float) k.number(p + "attention.layer_norm_rms_epsilon", 1e-5),
                !g.tensors().containsKey(LlamaTensors.OUTPUT));
        // Biases on q, k and v (Qwen2's; a llama file may have them too); biases anywhere else are refused below.
        config = config.withAttentionBias(g.tensors().containsKey(LlamaTensors.blockBias(0, "attn_q")))
                .withQkNorm(g.tensors().containsKey(LlamaTensors.block(0, "attn_q_norm")));
        int keyLength = k.integer(p + "attention.key_length", 0);
        if (keyLength > 0 && k.integer(p + "attention.value_length", keyLength) != keyLength) {
            throw new BpmFormatException(g.path() + ": " + p + "attention.value_length "
                    + k.integer(p + "attention.value_length", keyLength) + " differs from key_length " + keyLength
                    + " (heads of values of another size are not supported)");
        }
        if (keyLength > 0 && (long) keyLength * heads != dim) {  // Qwen3's heads: not dim / heads
            config = config.withHeadDim(keyLength);
        }
        String problem = config.problem();
        if (problem != null) {
            throw new BpmFormatException(g.path() + ": " + arch + " metadata: " + problem);
        }
        if (kv.containsKey(p + "rope.dimension_count")
                && k.integer(p + "rope.dimension_count", -1) != config.headSize()) {
            throw new BpmFormatException(g.path() + ": " + p + "rope.dimension_count "
                    + k.integer(p + "rope.dimension_count", -1) + " differs from the head size "
                    + config.headSize() + " (partial rotary embeddings are not supported)");
        }
        config = config.withRopeFreqFactors(ropeFreqFactors(g, k, p, config));
        problem = config.problem();
        if (problem != null) {
            throw new BpmFormatException(g.path() + ": rope scaling: " + problem);
        }
        List<LlamaTensors.Expected> tensors = LlamaTensors.expected(config);
        String bias = LlamaTensors.unexpectedBias(g.tensors().keySet(), tensors, name -> name);
        if (bias != null) {  // decoding without it would be wrong
            throw new BpmFormatException(g.path() + ": tensor " + bias + ": biases other than on attn_q, attn_k "
                    + "and attn_v (all three, in every block) are not supported");
        }
        boolean halves = !arch.equals("llama");  // qwen2, qwen3: q and k rows in Hugging Face's rotary order
        List<SourceTensor> out = new ArrayList<>();
        for (LlamaTensors.Expected e : tensors) {
            GgufFile.TensorInfo t = g.tensors().get(e.name());
            if (t == null) {
                throw new BpmFormatException(g.path() + ": tensor " + e.name() + " is missing");
            }
            if (!Arrays.equals(t.shape(), e.shape())) {
                throw new BpmFormatException(g.path() + ": tensor " + e.name() + " has shape "
                        + Arrays.toString(t.shape()) + ", the " + arch + " metadata implies "
                        + Arrays.toString(e.shape()));
            }
            if (t.type() == null) {
                g.data(t); // throws the unsupported-type error naming the tensor
            }
            int rotated = halves ? RotaryOrder.heads(e.name(), config) : 0;
            out.add(new GgmlSourceTensor(t.name(), t.shape(), t.type(), g.path(), rotated == 0 ? () -> g.data(t)
                    : () -> MemorySegment.ofArray(RotaryOrder.pairsFromHalves(g.data(t), t.shape()[0], rotated,
                            g.path() + ": tensor " + t.name()))));
        }
        var source = MetadataJson.newObject();
        source.put("format", "gguf");
        source.put("path", g.path().getFileName().toString());
        source.put("architecture", arch);
        if (kv.get("general.name") instanceof String name) {
            source.put("name", name);
        }
        if (kv.get(arch + ".pooling_type") instanceof Number pooling) {  // embedding models say how to pool
            source.put("pooling", switch (pooling.intValue()) {
                case 1 -> "mean";
                case 2 -> "cls";
                case 3 -> "last";
                case 4 -> "rank";
                default -> "none";
            });
        }
        if (tokenizer != null) {
            vocab = TokenizerFiles.read(tokenizer, config.vocabSize());
        }
        return new OpenedModel(new ModelMetadata("llama", config, vocab, MetadataJson.newObject(), source), out,
                g::close);
    }

    /**
     * Rope scaling as one divisor per rotary frequency, or null: Llama 3.1's factors as the file stores them
     * (tensor rope_freqs.weight, F32, one per pair of a head), times a linear factor (llama.rope.scaling.type
     * "linear": every frequency divided by llama.rope.scaling.factor, as llama.cpp's freq_scale = 1 / factor).
     * Other kinds (YaRN, which also rescales attention) are refused by name: decoding without them would run, wrongly.
     */
    private static float[] ropeFreqFactors(GgufFile g, Keys k, String p, ModelConfig c) throws BpmFormatException {
        int half = c.headSize() / 2;
        float[] factors = null;
        GgufFile.TensorInfo t = g.tensors().get("rope_freqs.weight");
        if (t != null) {
            if (t.type() != GgmlType.F32 || t.shape().length != 1 || t.shape()[0] != half) {
                throw new BpmFormatException(g.path() + ": tensor rope_freqs.weight must be F32 of " + half
                        + " values (one per pair of a head), not " + t.type() + " " + Arrays.toString(t.shape()));
            }
            factors = g.data(t).toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED
                    .withOrder(java.nio.ByteOrder.LITTLE_ENDIAN));
        }
        String scaling = k.kv.get(p + "rope.scaling.type") instanceof String st ? st : "none";
        switch (scaling) {
            case "none" -> { }
            case "linear" -> {
                float factor = (float) k.number(p + "rope.scaling.factor", 1);
                if (factors == null) {
                    factors = new float[half];
                    Arrays.fill(factors, 1f);
                }
                for (int i = 0; i < half; i++) {
                    factors[i] *= factor;
                }
            }
            default -> throw new BpmFormatException(g.path() + ": llama.rope.scaling.type '" + scaling
                    + "' is not supported yet (none, linear and Llama 3.1's rope_freqs are)");
        }
        return factors;
    }

    private static Vocabulary vocabulary(Path path, Keys k) throws BpmFormatException {
        if (!(k.kv.get("tokenizer.ggml.tokens") instanceof List<?> rawTokens)) {
            return null;
        }
        List<byte[]> tokens = new ArrayList<>(rawTokens.size());
        int maxLen = 0;
        for (Object o : rawTokens) {
            byte[] b = o instanceof byte[] bytes ? bytes : String.valueOf(o).getBytes(StandardCharsets.UTF_8);
            tokens.add(b);
            maxLen = Math.max(maxLen, b.length);
        }
        float[] scores = new float[tokens.size()];
        if (k.kv.get("tokenizer.ggml.scores") instanceof List<?> s) {
            if (s.size() != tokens.size()) {
                throw new BpmFormatException(path + ": tokenizer.ggml.scores has " + s.size() + " entries for "
                        + tokens.size() + " tokens");
            }
            for (int i = 0; i < scores.length; i++) {
                scores[i] = ((Number) s.get(i)).floatValue();
            }
        }
        String model = k.kv.get("tokenizer.ggml.model") instanceof String m ? m : Vocabulary.SENTENCE_PIECE;
        int[] types;
        if (k.kv.get("tokenizer.ggml.token_type") instanceof List<?> t) {
            if (t.size() != tokens.size()) {
                throw new BpmFormatException(path + ": tokenizer.ggml.token_type has " + t.size()
                        + " entries for " + tokens.size() + " tokens");
            }
            types = new int[tokens.size()];
            for (int i = 0; i < types.length; i++) {
                types[i] = ((Number) t.get(i)).intValue();
            }
        } else if (Vocabulary.BYTE_LEVEL_BPE.equals(model)) {
            types = new int[tokens.size()];
            Arrays.fill(types, Vocabulary.TYPE_NORMAL);
        } else {
            types = Vocabulary.llama2cTypes(tokens);
        }
        String template = k.kv.get("tokenizer.chat_template") instanceof String c ? c : null;
        List<String> merges = new ArrayList<>();
        if (k.kv.get("tokenizer.ggml.merges") instanceof List<?> list) {
            for (Object o : list) {  // strings in arrays come as their bytes (tokens need not be UTF-8)
                if (!(o instanceof byte[] m)) {
                    throw new BpmFormatException(path + ": tokenizer.ggml.merges[" + merges.size()
                            + "] is not a string");
                }
                merges.add(new String(m, StandardCharsets.UTF_8));
            }
        }
        String pre = k.kv.get("tokenizer.ggml.pre") instanceof String p ? p : null;
        // llama.cpp's defaults where the key is absent: BOS for SentencePiece and for Llama 3's byte-level BPE
        boolean addBos = k.kv.get("tokenizer.ggml.add_bos_token") instanceof Boolean b ? b
                : !Vocabulary.BYTE_LEVEL_BPE.equals(model) || pre != null && Vocabulary.LLAMA3_PRE_TOKENIZERS.contains(pre);
        Vocabulary v = new Vocabulary(model, tokens, scores, types, k.integer("tokenizer.ggml.bos_token_id", 1),
                k.integer("tokenizer.ggml.eos_token_id", 2), maxLen, template, merges, pre, addBos);
        String problem = v.problem();
        if (problem != null) {
            throw new BpmFormatException(path + ": tokenizer: " + problem);
        }
        return v;
    }

    /** Typed metadata lookups whose errors name the key. */
    private record Keys(Path path, Map<String, Object> kv) {
        String text(String key) throws BpmFormatException {
            if (!(kv.get(key) instanceof String s)) {
                throw new BpmFormatException(path + ": metadata key " + key + " is missing or not a string");
            }
            return s;
        }

        int integer(String key, int fallback) throws BpmFormatException {
            Object o = kv.get(key);
            if (o == null && fallback != -1) {
                return fallback;
            }
            if (!(o instanceof Long l) || l < 0 || l > Integer.MAX_VALUE) {
                throw new BpmFormatException(path + ": metadata key " + key + " is missing or not a valid integer");
            }
            return (int) (long) l;
        }

        double number(String key, double fallback) throws BpmFormatException {
            Object o = kv.get(key);
            if (o == null) {
                return fallback;
            }
            if (!(o instanceof Number n)) {
                throw new BpmFormatException(path + ": metadata key " + key + " is not a number");
            }
            return n.doubleValue();
        }
    }
}
