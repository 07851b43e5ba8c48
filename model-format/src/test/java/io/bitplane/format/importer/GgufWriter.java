package io.bitplane.format.importer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes small GGUF v3 files for tests: metadata of strings, unsigned integers, floats, booleans and arrays of
 * strings, integers or floats, F32 tensors, and tensors of any ggml type given as their blocks' bytes (the layout
 * {@link GgufFile} documents; shapes given as [rows, columns], written fastest dimension first as ggml does).
 */
public final class GgufWriter {
    private final Map<String, Object> metadata = new LinkedHashMap<>();
    private final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final Map<String, byte[]> data = new LinkedHashMap<>();
    private final Map<String, Integer> types = new LinkedHashMap<>();

    /**
     * A Llama of config {@code c} in llama.cpp's naming, no vocabulary: its metadata and F32 tensors, norms of ones,
     * matrices of random values (seeded).
     */
    public static GgufWriter llama(io.bitplane.format.ModelConfig c, long seed) {
        return of("llama", c, seed);
    }

    /**
     * A model of architecture {@code arch} ("llama", "qwen2": the prefix of its keys) as {@link #llama} writes one;
     * biases (random) where the config has them.
     */
    public static GgufWriter of(String arch, io.bitplane.format.ModelConfig c, long seed) {
        GgufWriter w = new GgufWriter()
                .put("general.architecture", arch)
                .put(arch + ".embedding_length", c.dim())
                .put(arch + ".feed_forward_length", c.hiddenDim())
                .put(arch + ".block_count", c.nLayers())
                .put(arch + ".attention.head_count", c.nHeads())
                .put(arch + ".attention.head_count_kv", c.nKvHeads())
                .put(arch + ".context_length", c.contextLength())
                .put(arch + ".rope.freq_base", c.ropeTheta())
                .put(arch + ".attention.layer_norm_rms_epsilon", c.rmsNormEps())
                .put(arch + ".vocab_size", c.vocabSize());
        if (c.headDim() > 0) {
            w.put(arch + ".attention.key_length", c.headDim()).put(arch + ".attention.value_length", c.headDim());
        }
        java.util.Random rnd = new java.util.Random(seed);
        for (io.bitplane.format.LlamaTensors.Expected e : io.bitplane.format.LlamaTensors.expected(c)) {
            int n = (int) java.util.Arrays.stream(e.shape()).reduce(1, (a, b) -> a * b);
            float[] values = e.name().endsWith(".bias") ? io.bitplane.format.TestTensors.gaussian(rnd, n, 0.5f)
                    : e.shape().length == 1 ? filled(n, 1f) : io.bitplane.format.TestTensors.gaussian(rnd, n, 0.3f);
            w.tensor(e.name(), e.shape(), values);
        }
        return w;
    }

    public static float[] filled(int n, float value) {
        float[] f = new float[n];
        java.util.Arrays.fill(f, value);
        return f;
    }

    /** A string, Integer (u32), Float (f32), Boolean, or a List of Strings, Integers (i32) or Floats. */
    public GgufWriter put(String key, Object value) {
        metadata.put(key, value);
        return this;
    }

    public GgufWriter tensor(String name, long[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return tensor(name, shape, GgmlType.F32, b.array());
    }

    /** A tensor of {@code type} whose blocks are {@code blocks}, replacing any tensor of that name. */
    public GgufWriter tensor(String name, long[] shape, GgmlType type, byte[] blocks) {
        shapes.put(name, shape);
        data.put(name, blocks);
        types.put(name, type.id);
        return this;
    }

    public void write(Path path) throws IOException {
        Out out = new Out();
        out.bytes("GGUF".getBytes(StandardCharsets.US_ASCII));
        out.u32(3);
        out.u64(shapes.size());
        out.u64(metadata.size());
        for (var e : metadata.entrySet()) {
            out.string(e.getKey());
            out.value(e.getValue(), true);
        }
        long offset = 0;
        for (var e : shapes.entrySet()) {
            out.string(e.getKey());
            long[] shape = e.getValue();
            out.u32(shape.length);
            for (int d = shape.length - 1; d >= 0; d--) {
                out.u64(shape[d]);
            }
            out.u32(types.get(e.getKey()));
            out.u64(offset);
            offset += (data.get(e.getKey()).length + 31L) / 32 * 32;
        }
        out.pad();
        for (byte[] blocks : data.values()) {
            out.bytes(blocks);
            out.pad();
        }
        Files.write(path, out.toByteArray());
    }

    private static final class Out extends ByteArrayOutputStream {
        void bytes(byte[] b) {
            writeBytes(b);
        }

        void u32(int v) {
            bytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array());
        }

        void u64(long v) {
            bytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
        }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            bytes(b);
        }

        void pad() {
            while (size() % 32 != 0) {
                write(0);
            }
        }

        /** A value with its type id first (or, in an array, without: the array gives the type once). */
        void value(Object v, boolean typed) {
            switch (v) {
                case String s -> {
                    if (typed) {
                        u32(8);
                    }
                    string(s);
                }
                case Integer i -> {
                    if (typed) {
                        u32(4);
                    }
                    u32(i);
                }
                case Float f -> {
                    if (typed) {
                        u32(6);
                    }
                    u32(Float.floatToIntBits(f));
                }
                case Boolean b -> {
                    if (typed) {
                        u32(7);
                    }
                    write(b ? 1 : 0);
                }
                case List<?> list -> {
                    u32(9);
                    Object first = list.isEmpty() ? "" : list.get(0);
                    u32(first instanceof String ? 8 : first instanceof Float ? 6 : 5);
                    u64(list.size());
                    list.forEach(e -> value(e, false));
                }
                default -> throw new IllegalArgumentException("no GGUF type for " + v);
            }
        }
    }
}
