package io.bitplane.format.importer;

import io.bitplane.format.LlamaTensors;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.ModelConfig;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a model as a Hugging Face checkpoint (config.json + F32 safetensors, q and k rows permuted as HF's
 * conversion does), so that the importer is tested against an independent writer of the format.
 */
public final class SafetensorsFixture {
    private SafetensorsFixture() {
    }

    /** Writes {@code model}; with {@code untied}, the classifier is a separate lm_head.weight (a copy). */
    /** The folder, created, with stories260K written into it as one model.safetensors and its config.json. */
    public static Path stories(Path folder) throws Exception {
        java.nio.file.Files.createDirectories(folder);
        try (ModelSource legacy = ModelSources.open(io.bitplane.format.SharedData.stories260K(), null)) {
            write(legacy, folder, false, false);
        }
        return folder;
    }

    public static void write(ModelSource model, Path dir, boolean sharded, boolean untied) throws Exception {
        ModelConfig c = model.metadata().config();
        var cfg = MetadataJson.newObject();
        cfg.put("model_type", "llama");
        cfg.put("hidden_size", c.dim());
        cfg.put("intermediate_size", c.hiddenDim());
        cfg.put("num_hidden_layers", c.nLayers());
        cfg.put("num_attention_heads", c.nHeads());
        cfg.put("num_key_value_heads", c.nKvHeads());
        cfg.put("vocab_size", c.vocabSize());
        cfg.put("max_position_embeddings", c.contextLength());
        cfg.put("rms_norm_eps", c.rmsNormEps());
        cfg.put("tie_word_embeddings", c.tiedEmbeddings() && !untied);
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        Map<String, float[]> hf = new LinkedHashMap<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (SourceTensor t : model.tensors()) {
            String name = SafetensorsImporter.hfName(t.name());
            float[] v = t.floats();
            int heads = t.name().endsWith("attn_q.weight") ? c.nHeads() : t.name().endsWith("attn_k.weight")
                    ? c.nKvHeads() : 0;
            hf.put(name, heads == 0 ? v : toHfOrder(v, (int) t.shape()[0], (int) t.shape()[1], heads));
            shapes.put(name, t.shape());
        }
        if (untied) {
            hf.put("lm_head.weight", hf.get("model.embed_tokens.weight").clone());
            shapes.put("lm_head.weight", shapes.get("model.embed_tokens.weight"));
        }
        List<String> names = List.copyOf(hf.keySet());
        if (!sharded) {
            writeFile(dir.resolve("model.safetensors"), names, hf, shapes);
            return;
        }
        int half = names.size() / 2;
        writeFile(dir.resolve("model-00001-of-00002.safetensors"), names.subList(0, half), hf, shapes);
        writeFile(dir.resolve("model-00002-of-00002.safetensors"), names.subList(half, names.size()), hf, shapes);
        var index = MetadataJson.newObject();
        var map = index.putObject("weight_map");
        for (int i = 0; i < names.size(); i++) {
            map.put(names.get(i), i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
        }
        Files.writeString(dir.resolve("model.safetensors.index.json"), index.toString());
    }

    /** HF's permute: Meta row 2j + t of a head becomes HF row t * hd/2 + j. */
    static float[] toHfOrder(float[] w, int rows, int cols, int heads) {
        float[] out = new float[w.length];
        int hd = rows / heads;
        for (int o = 0; o < rows; o++) {
            int h = o / hd;
            int r = o % hd;
            int hfRow = h * hd + (r % 2) * (hd / 2) + r / 2;
            System.arraycopy(w, o * cols, out, hfRow * cols, cols);
        }
        return out;
    }

    /**
     * {@code dir}, created, as a Hugging Face folder: {@code config} as config.json and the tensors (by .bpm name,
     * in the order and rows given: Hugging Face's rotary order for q and k) in one F32 model.safetensors.
     */
    public static Path folder(Path dir, com.fasterxml.jackson.databind.node.ObjectNode config,
                              Map<String, float[]> tensors, Map<String, long[]> shapes) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), config.toString());
        Map<String, float[]> hf = new LinkedHashMap<>();
        Map<String, long[]> hfShapes = new LinkedHashMap<>();
        for (var e : tensors.entrySet()) {
            hf.put(SafetensorsImporter.hfName(e.getKey()), e.getValue());
            hfShapes.put(SafetensorsImporter.hfName(e.getKey()), shapes.get(e.getKey()));
        }
        writeFile(dir.resolve("model.safetensors"), List.copyOf(hf.keySet()), hf, hfShapes);
        return dir;
    }

    private static void writeFile(Path file, List<String> names, Map<String, float[]> data,
                                  Map<String, long[]> shapes) throws Exception {
        var header = MetadataJson.newObject();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (String n : names) {
            var e = header.putObject(n);
            e.put("dtype", "F32");
            var shape = e.putArray("shape");
            for (long d : shapes.get(n)) {
                shape.add(d);
            }
            long bytes = 4L * data.get(n).length;
            e.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).array());
        out.write(json);
        for (String n : names) {
            float[] v = data.get(n);
            ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(v);
            out.write(b.array());
        }
        Files.write(file, out.toByteArray());
    }
}
