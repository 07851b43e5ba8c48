package io.bitplane.format.importer;

import com.fasterxml.jackson.databind.JsonNode;
import io.bitplane.format.BpmFormatException;
import io.bitplane.format.Encoding;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.ModelMetadata;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.Vocabulary;
import io.bitplane.format.quant.QuantSpec;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face Llama-family checkpoints: {@code config.json} with {@code model.safetensors}, or sharded with
 * {@code model.safetensors.index.json}. F32, F16 and BF16 tensors are kept as they are.
 *
 * <p>safetensors file: u64 header length N, N bytes of JSON ({@code name: {dtype, shape, data_offsets: [begin,
 * end]}}, offsets relative to byte 8 + N), then the data.
 *
 * <p>Rotary order: Hugging Face's conversion permutes the rows of each head of q_proj and k_proj so that the two
 * halves of a head rotate together (HF row {@code t * hd/2 + j} is Meta row {@code 2j + t}); llama2.c, GGUF and
 * .bpm rotate adjacent pairs. The importer moves rows back ({@link RotaryOrder}), which changes no value, so the
 * model decodes the same.
 */
public final class SafetensorsImporter {
    private static final long MAX_HEADER = 100L << 20;

    private SafetensorsImporter() {
    }

    /** Entry of one tensor in one shard; encoding null where its dtype is not one Bitplane reads. */
    private record Entry(String dtype, MappedFile file, Encoding encoding, long[] shape, long offset, long bytes) {
    }

    /**
     * Opens a checkpoint: {@code path} is its directory, its config.json, a .safetensors file or the index; the
     * other files are looked up beside it.
     */
    public static ModelSource open(Path path, Path tokenizer) throws IOException {
        Path dir = Files.isDirectory(path) ? path : path.toAbsolutePath().getParent();
        Path config = dir.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            throw new BpmFormatException(path + ": no config.json beside the safetensors checkpoint");
        }
        List<MappedFile> mapped = new ArrayList<>();
        try {
            Map<String, Entry> entries = new HashMap<>();
            Path index = dir.resolve("model.safetensors.index.json");
            List<Path> shards = new ArrayList<>();
            if (path.toString().endsWith(".safetensors") && Files.isRegularFile(path)) {
                shards.add(path);
            } else if (Files.isRegularFile(index)) {
                JsonNode map = MetadataJson.mapper().readTree(index.toFile()).path("weight_map");
                if (!map.isObject()) {
                    throw new BpmFormatException(index + ": no weight_map object");
                }
                for (Iterator<JsonNode> it = map.elements(); it.hasNext(); ) {
                    Path shard = dir.resolve(it.next().asText());
                    if (!shard.normalize().startsWith(dir.normalize()) || !Files.isRegularFile(shard)) {
                        throw new BpmFormatException(index + ": shard " + shard.getFileName() + " is missing");
                    }
                    if (!shards.contains(shard)) {
                        shards.add(shard);
                    }
                }
            } else {
                shards.add(dir.resolve("model.safetensors"));
            }
            for (Path shard : shards) {
                MappedFile f = new MappedFile(shard);
                mapped.add(f);
                readHeader(f, entries);
            }
            ModelConfig cfg = config(config, entries);
            List<LlamaTensors.Expected> tensors = LlamaTensors.expected(cfg);
            String bias = LlamaTensors.unexpectedBias(entries.keySet(), tensors, SafetensorsImporter::hfName);
            if (bias != null) {  // decoding without it would be wrong
                throw new BpmFormatException(dir + ": tensor " + bias + ": biases other than on q_proj, k_proj "
                        + "and v_proj (all three, in every layer) are not supported");
            }
            List<SourceTensor> out = new ArrayList<>();
            for (LlamaTensors.Expected e : tensors) {
                String hf = hfName(e.name());
                Entry entry = entries.get(hf);
                if (entry == null) {
                    throw new BpmFormatException(dir + ": tensor " + hf + " is missing");
                }
                if (!Arrays.equals(entry.shape, e.shape())) {
                    throw new BpmFormatException(entry.file.path + ": tensor " + hf + " has shape "
                            + Arrays.toString(entry.shape) + ", config.json implies " + Arrays.toString(e.shape()));
                }
                if (entry.encoding == null) {
                    throw new BpmFormatException(entry.file.path + ": tensor " + hf + " has dtype '" + entry.dtype
                            + "', which is not supported (F32, F16 and BF16 are)");
                }
                int heads = RotaryOrder.heads(e.name(), cfg);
                QuantSpec spec = QuantSpec.parse(entry.encoding.name());
                out.add(new EncodedSourceTensor(e.name(), e.shape(), spec, () -> load(e.name(), entry, heads)));
            }
            // after the tensors' shapes have held vocab_size to the embedding's rows: a tokenizer is sized by it
            Vocabulary vocab = tokenizer != null ? TokenizerFiles.read(tokenizer, cfg.vocabSize())
                    : TokenizerFiles.beside(dir, cfg.vocabSize());
            var source = MetadataJson.newObject();
            source.put("format", "safetensors");
            source.put("path", dir.getFileName() == null ? dir.toString() : dir.getFileName().toString());
            List<MappedFile> files = List.copyOf(mapped);
            return new OpenedModel(new ModelMetadata("llama", cfg, vocab, MetadataJson.newObject(), source), out,
                    () -> files.forEach(MappedFile::close));
        } catch (IOException | RuntimeException e) {
            mapped.forEach(MappedFile::close);
            throw e;
        }
    }

    private static void readHeader(MappedFile f, Map<String, Entry> entries) throws IOException {
        long n = f.slice(0, 8, "the header length").get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(
                ByteOrder.LITTLE_ENDIAN), 0);
        if (n <= 0 || n > MAX_HEADER) {
            throw new BpmFormatException(f.path + ": safetensors header length " + n + " is not plausible");
        }
        byte[] json = f.slice(8, n, "the JSON header").toArray(ValueLayout.JAVA_BYTE);
        JsonNode root;
        try {
            root = MetadataJson.mapper().readTree(json);
        } catch (IOException e) {
            throw new BpmFormatException(f.path + ": safetensors header is not valid JSON");
        }
        long dataStart = 8 + n;
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            String name = e.getKey();
            JsonNode t = e.getValue();
            String dtype = t.path("dtype").asText();
            Encoding enc = switch (dtype) {
                case "F32" -> Encoding.F32;
                case "F16" -> Encoding.F16;
                case "BF16" -> Encoding.BF16;
                default -> null;
            };
            JsonNode shapeNode = t.path("shape");
            JsonNode off = t.path("data_offsets");
            if (!shapeNode.isArray() || !off.isArray() || off.size() != 2) {
                throw new BpmFormatException(f.path + ": tensor " + name + ": missing shape or data_offsets");
            }
            long[] shape = new long[shapeNode.size()];
            long count = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = shapeNode.get(i).asLong();
                if (shape[i] <= 0 || count > Long.MAX_VALUE / 8 / shape[i]) {  // / 8: count x bytes cannot wrap
                    throw new BpmFormatException(f.path + ": tensor " + name + ": bad shape " + shapeNode);
                }
                count *= shape[i];
            }
            long begin = off.get(0).asLong();
            long end = off.get(1).asLong();
            if (enc != null && end - begin != count * enc.floatBytes()) {
                throw new BpmFormatException(f.path + ": tensor " + name + ": data_offsets [" + begin + ", " + end
                        + ") do not hold " + count + " " + dtype + " values");
            }
            f.slice(dataStart + begin, end - begin, "tensor " + name);
            // A dtype Bitplane does not read is an error only if the model needs the tensor (open names it).
            if (entries.put(name, new Entry(dtype, f, enc, shape, dataStart + begin, end - begin)) != null) {
                throw new BpmFormatException(f.path + ": tensor " + name + " appears in two shards");
            }
        }
    }

    /**
     * The positions the model attends over in full: max_position_embeddings, but no more than a sliding window
     * (Mistral 7B v0.1: 4,096 of 32,768), since the decoder attends to every cached position and would differ
     * from the model past the window.
     */
    private static int contextLength(JsonNode c) {
        int context = c.path("max_position_embeddings").asInt(2048);
        // Qwen2's configs name a window they do not use ("use_sliding_window": false); Mistral's use theirs.
        int window = c.path("use_sliding_window").asBoolean(true) ? c.path("sliding_window").asInt(0) : 0;
        return window > 0 ? Math.min(context, window) : context;
    }

    private static ModelConfig config(Path path, Map<String, Entry> entries) throws IOException {
        JsonNode c;
        try {
            c = MetadataJson.mapper().readTree(path.toFile());
        } catch (IOException e) {
            throw new BpmFormatException(path + ": not valid JSON");
        }
        String type = c.path("model_type").asText("llama");
        if (!List.of("llama", "mistral", "qwen2", "qwen3").contains(type)) {
            throw new BpmFormatException(path + ": model_type '" + type + "' is not a Llama-family model (llama, "
                    + "mistral, qwen2, qwen3)");
        }
        int heads = required(path, c, "num_attention_heads");
        boolean tied = c.path("tie_word_embeddings").asBoolean(false) || !entries.containsKey("lm_head.weight");
        ModelConfig cfg = new ModelConfig(required(path, c, "hidden_size"), required(path, c, "intermediate_size"),
                required(path, c, "num_hidden_layers"), heads, c.path("num_key_value_heads").asInt(heads),
                required(path, c, "vocab_size"), contextLength(c),
                (float) c.path("rope_theta").asDouble(10000), (float) c.path("rms_norm_eps").asDouble(1e-6), tied);
        // Biases on q, k and v (Qwen2's); biases anywhere else are refused with the tensors. Qwen3's head norms,
        // and heads whose size need not be hidden_size / num_attention_heads.
        cfg = cfg.withAttentionBias(entries.containsKey(hfName(LlamaTensors.blockBias(0, "attn_q"))))
                .withQkNorm(entries.containsKey(hfName(LlamaTensors.block(0, "attn_q_norm"))));
        int headDim = c.path("head_dim").asInt(0);
        if (headDim > 0 && (long) headDim * heads != cfg.dim()) {
            cfg = cfg.withHeadDim(headDim);
        }
        String problem = cfg.problem();
        if (problem == null && c.hasNonNull("rope_scaling")) {
            cfg = cfg.withRopeFreqFactors(RopeScaling.factors(path, c.get("rope_scaling"), cfg));
            problem = cfg.problem();
        }
        if (problem != null) {
            throw new BpmFormatException(path + ": " + problem);
        }
        return cfg;
    }

    private static int required(Path path, JsonNode c, String key) throws BpmFormatException {
        JsonNode n = c.get(key);
        if (n == null || !n.canConvertToInt() || n.asInt() <= 0) {
            throw new BpmFormatException(path + ": " + key + " is missing or not a positive integer");
        }
        return n.asInt();
    }

    /** The Hugging Face name of a .bpm (GGUF) tensor name: blk.N.KIND.weight or .bias. */
    static String hfName(String name) {
        return switch (name) {
            case LlamaTensors.TOKEN_EMBD -> "model.embed_tokens.weight";
            case LlamaTensors.OUTPUT_NORM -> "model.norm.weight";
            case LlamaTensors.OUTPUT -> "lm_head.weight";
            default -> {
                String[] p = name.split("\\.");
                String layer = "model.layers." + p[1] + ".";
                yield layer + switch (p[2]) {
                    case "attn_norm" -> "input_layernorm";
                    case "ffn_norm" -> "post_attention_layernorm";
                    case "attn_q" -> "self_attn.q_proj";
                    case "attn_k" -> "self_attn.k_proj";
                    case "attn_v" -> "self_attn.v_proj";
                    case "attn_output" -> "self_attn.o_proj";
                    case "attn_q_norm" -> "self_attn.q_norm";
                    case "attn_k_norm" -> "self_attn.k_norm";
                    case "ffn_gate" -> "mlp.gate_proj";
                    case "ffn_up" -> "mlp.up_proj";
                    case "ffn_down" -> "mlp.down_proj";
                    default -> throw new IllegalArgumentException(name);
                } + "." + p[3];
            }
        };
    }

    /** The tensor's bytes; for q and k ({@code heads > 0}) with rows moved back to the adjacent-pair order. */
    private static EncodedTensor load(String name, Entry e, int heads) throws BpmFormatException {
        String hf = hfName(name);
        if (e.bytes > Integer.MAX_VALUE - 8) {  // the largest Java array
            throw new BpmFormatException(e.file.path + ": tensor " + hf + " is " + e.bytes
                    + " bytes, more than one tensor can hold (2 GB)");
        }
        MemorySegment src = e.file.slice(e.offset, e.bytes, "tensor " + hf);
        TensorSpec spec = TensorSpec.of(name, e.encoding, 0, e.shape);
        if (heads == 0) {
            return new EncodedTensor(spec, src.toArray(ValueLayout.JAVA_BYTE));
        }
        return new EncodedTensor(spec, RotaryOrder.pairsFromHalves(src, e.shape[0], heads, e.file.path + ": tensor "
                + hf));
    }
}
