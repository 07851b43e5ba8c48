package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.ModelMetadata;
import io.bitplane.format.Vocabulary;
import io.bitplane.format.TensorSpec;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * llama2.c checkpoints, both exports:
 * <ul>
 *   <li>legacy: seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative
 *   vocab_size means a separate classifier), then fp32 tensors grouped by kind across layers: token embedding,
 *   rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis_real, freq_cis_imag (unused), [wcls];</li>
 *   <li>version 1 ("ak42"): magic 0x616b3432, int32 version 1, the seven ints, a shared-classifier byte, padding to
 *   256 bytes, then fp32: attention norms, ffn norms, final norm, token embedding, wq, wk, wv, wo, w1, w2, w3,
 *   [wcls].</li>
 * </ul>
 * llama2.c's w1, w2, w3 are GGUF's ffn_gate, ffn_down, ffn_up. The file size must match the header exactly.
 */
public final class Llama2cImporter {
    static final int MAGIC_V1 = 0x616b3432;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Llama2cImporter() {
    }

    /**
     * Opens a checkpoint. The tokenizer is {@code tokenizer} when given, else {@code tokenizer.bin} or
     * {@code tok<vocab>.bin} beside the checkpoint, else none (a vocabulary can be added later with --tokenizer).
     */
    public static ModelSource open(Path path, Path tokenizer) throws IOException {
        MappedFile f = new MappedFile(path);
        try {
            return read(f, tokenizer);
        } catch (IOException | RuntimeException e) {
            f.close();
            throw e;
        }
    }

    private static ModelSource read(MappedFile f, Path tokenizer) throws IOException {
        String where = f.path.toString();
        f.slice(0, 28, "the llama2.c header");
        boolean v1 = f.segment.get(INT, 0) == MAGIC_V1;
        long p = 0;
        if (v1) {
            f.slice(0, 256, "the version-1 header");
            int version = f.segment.get(INT, 4);
            if (version != 1) {
                throw new BpmFormatException(where + ": llama2.c export version " + version
                        + " is not supported (only version 1 holds fp32 weights)");
            }
            p = 8;
        }
        int[] h = new int[7];
        for (int i = 0; i < 7; i++) {
            h[i] = f.segment.get(INT, p + 4L * i);
        }
        boolean shared;
        int vocab = h[5];
        if (v1) {
            shared = f.segment.get(ValueLayout.JAVA_BYTE, 36) != 0;
        } else {
            shared = vocab > 0;
            vocab = Math.abs(vocab);
        }
        ModelConfig config = new ModelConfig(h[0], h[1], h[2], h[3], h[4], vocab, h[6], 10000f, 1e-5f, shared);
        String problem = config.problem();
        if (problem != null) {
            throw new BpmFormatException(where + ": not a llama2.c checkpoint, or a damaged one: header " + problem);
        }
        Map<String, long[]> shapes = new HashMap<>();
        for (LlamaTensors.Expected e : LlamaTensors.expected(config)) {
            shapes.put(e.name(), e.shape());
        }
        Layout layout = new Layout(f, shapes);
        int n = config.nLayers();
        if (v1) {
            layout.offset = 256;
            layout.perLayer("attn_norm", n);
            layout.perLayer("ffn_norm", n);
            layout.single(LlamaTensors.OUTPUT_NORM);
            layout.single(LlamaTensors.TOKEN_EMBD);
            for (String kind : List.of("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down",
                    "ffn_up")) {
                layout.perLayer(kind, n);
            }
        } else {
            layout.offset = 28;
            layout.single(LlamaTensors.TOKEN_EMBD);
            layout.perLayer("attn_norm", n);
            for (String kind : List.of("attn_q", "attn_k", "attn_v", "attn_output")) {
                layout.perLayer(kind, n);
            }
            layout.perLayer("ffn_norm", n);
            for (String kind : List.of("ffn_gate", "ffn_down", "ffn_up")) {
                layout.perLayer(kind, n);
            }
            layout.single(LlamaTensors.OUTPUT_NORM);
            layout.offset += 2L * config.contextLength() * (config.headSize() / 2) * 4; // freq_cis, unused
        }
        if (!shared) {
            layout.single(LlamaTensors.OUTPUT);
        }
        if (layout.offset != f.size()) {
            throw new BpmFormatException(where + ": the llama2.c header (" + config + ") implies " + layout.offset
                    + " bytes but the file has " + f.size() + (layout.offset > f.size() ? ": truncated"
                    : ": wrong header or not a llama2.c checkpoint"));
        }
        Vocabulary vocabulary = null;
        Path tok = tokenizer != null ? tokenizer : findTokenizer(f.path, vocab);
        if (tok != null) {
            vocabulary = TokenizerFiles.read(tok, vocab);
        }
        var source = MetadataJson.newObject();
        source.put("format", v1 ? "llama2c-v1" : "llama2c-legacy");
        source.put("path", f.path.getFileName().toString());
        if (tok != null) {
            source.put("tokenizer", tok.getFileName().toString());
        }
        ModelMetadata meta = new ModelMetadata("llama", config, vocabulary, MetadataJson.newObject(), source);
        List<SourceTensor> ordered = new ArrayList<>();
        for (LlamaTensors.Expected e : LlamaTensors.expected(config)) {
            ordered.add(layout.tensors.get(e.name()));
        }
        return new OpenedModel(meta, ordered, f::close);
    }

    /** tokenizer.bin or tok{vocab}.bin beside the checkpoint, as llama2.c's run and its tinyllamas models name it. */
    static Path findTokenizer(Path model, int vocab) {
        Path dir = model.toAbsolutePath().getParent();
        for (String name : List.of("tokenizer.bin", "tok" + vocab + ".bin")) {
            Path p = dir.resolve(name);
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        return null;
    }

    /** Walks the checkpoint's fp32 arrays in file order, recording where each tensor lies. */
    private static final class Layout {
        final MappedFile f;
        final Map<String, long[]> shapes;
        final Map<String, SourceTensor> tensors = new HashMap<>();
        long offset;

        Layout(MappedFile f, Map<String, long[]> shapes) {
            this.f = f;
            this.shapes = shapes;
        }

        void perLayer(String kind, int layers) {
            for (int l = 0; l < layers; l++) {
                single(LlamaTensors.block(l, kind));
            }
        }

        void single(String name) {
            long[] shape = shapes.get(name);
            long bytes = 4 * TensorSpec.of(name, io.bitplane.format.Encoding.F32, 0, shape).elementCount();
            long at = offset;
            tensors.put(name, new FloatSourceTensor(name, shape,
                    () -> f.slice(at, bytes, "tensor " + name).toArray(FLOAT)));
            offset += bytes;
        }
    }
}
