package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file (versions 2 and 3) parsed from its mapping: the key-value metadata and the tensor infos. Every length
 * and offset is checked against the file before use, so a damaged file gives an error that names the key or tensor.
 *
 * <pre>
 * "GGUF" u32 version, u64 tensor_count, u64 kv_count
 * kv:     string key, u32 value type, value      (string = u64 length + UTF-8 bytes; array = u32 type, u64 n, values)
 * tensor: string name, u32 n_dims, u64 ne[n_dims] (ne[0] innermost), u32 ggml type, u64 offset (from data start)
 * data:   starts at the next multiple of general.alignment (default 32)
 * </pre>
 */
public final class GgufFile implements AutoCloseable {
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final int MAGIC = 0x46554747; // "GGUF" little-endian

    /** One tensor's entry: shape outermost first (ggml's ne reversed), ggml type, absolute byte range. */
    public record TensorInfo(String name, long[] shape, GgmlType type, int typeId, long offset, long bytes) {
    }

    final MappedFile file;
    private final Map<String, Object> kv;
    private final Map<String, TensorInfo> tensors;

    private GgufFile(MappedFile file, Map<String, Object> kv, Map<String, TensorInfo> tensors) {
        this.file = file;
        this.kv = kv;
        this.tensors = tensors;
    }

    public static GgufFile open(Path path) throws IOException {
        MappedFile f = new MappedFile(path);
        try {
            return parse(f);
        } catch (IOException | RuntimeException e) {
            f.close();
            throw e;
        }
    }

    private static GgufFile parse(MappedFile f) throws IOException {
        Reader r = new Reader(f);
        if (r.u32("magic") != MAGIC) {
            throw new BpmFormatException(f.path + ": not a GGUF file (bad magic)");
        }
        int version = r.u32("version");
        if (version != 2 && version != 3) {
            throw new BpmFormatException(f.path + ": GGUF version " + version + " is not supported (2 and 3 are)");
        }
        long nTensors = r.u64("tensor_count");
        long nKv = r.u64("kv_count");
        if (nTensors < 0 || nKv < 0 || nTensors > f.size() / 24 || nKv > f.size() / 12) {
            throw new BpmFormatException(f.path + ": implausible counts: " + nTensors + " tensors, " + nKv + " keys");
        }
        Map<String, Object> kv = new LinkedHashMap<>();
        for (long i = 0; i < nKv; i++) {
            String key = r.string("key " + i);
            r.context = "key " + key;
            int type = r.u32("value type");
            kv.put(key, r.value(type, 0));
        }
        long alignment = 32;
        if (kv.get("general.alignment") instanceof Number n) {
            alignment = n.longValue();
            if (alignment <= 0 || alignment > 1 << 20 || Long.bitCount(alignment) != 1) {
                throw new BpmFormatException(f.path + ": general.alignment " + alignment + " is not a power of two");
            }
        }
        List<Object[]> raw = new ArrayList<>();
        for (long i = 0; i < nTensors; i++) {
            String name = r.string("tensor name " + i);
            r.context = "tensor " + name;
            int nDims = r.u32("n_dims");
            if (nDims < 1 || nDims > 4) {
                throw new BpmFormatException(f.path + ": tensor " + name + ": " + nDims + " dimensions");
            }
            long[] ne = new long[nDims];
            for (int d = 0; d < nDims; d++) {
                ne[d] = r.u64("ne[" + d + "]");
                if (ne[d] <= 0 || ne[d] > 1L << 40) {
                    throw new BpmFormatException(f.path + ": tensor " + name + ": dimension " + ne[d]);
                }
            }
            int type = r.u32("type");
            long offset = r.u64("offset");
            raw.add(new Object[] {name, ne, type, offset});
        }
        long dataStart = (r.pos + alignment - 1) / alignment * alignment;
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (Object[] t : raw) {
            String name = (String) t[0];
            long[] ne = (long[]) t[1];
            int typeId = (int) t[2];
            long offset = (long) t[3];
            GgmlType type = GgmlType.ofId(typeId);
            long[] shape = new long[ne.length];
            long count = 1;
            for (int d = 0; d < ne.length; d++) {
                shape[d] = ne[ne.length - 1 - d];
            }
            for (long n : ne) {
                if (count > Long.MAX_VALUE / n) {  // each dimension is at most 2^40, but not their product
                    throw new BpmFormatException(f.path + ": tensor " + name + ": shape " + Arrays.toString(shape)
                            + " holds more values than a file can");
                }
                count *= n;
            }
            long bytes = -1;
            if (type != null) {
                if (ne[0] % type.blockSize != 0) {
                    throw new BpmFormatException(f.path + ": tensor " + name + ": row length " + ne[0]
                            + " is not a multiple of the " + type + " block size " + type.blockSize);
                }
                long blocks = count / type.blockSize;
                if (blocks > f.size() / type.blockBytes) {  // so that blocks x blockBytes cannot wrap around
                    throw new BpmFormatException(f.path + ": truncated: tensor " + name + " needs " + blocks
                            + " blocks of " + type.blockBytes + " bytes, more than the " + f.size() + "-byte file");
                }
                bytes = blocks * type.blockBytes;
                f.slice(dataStart + offset, bytes, "tensor " + name);
            }
            if (offset < 0 || tensors.put(name, new TensorInfo(name, shape, type, typeId, dataStart + offset, bytes))
                    != null) {
                throw new BpmFormatException(f.path + ": tensor " + name + ": duplicate name or negative offset");
            }
        }
        return new GgufFile(f, Collections.unmodifiableMap(kv), Collections.unmodifiableMap(tensors));
    }

    public Path path() {
        return file.path;
    }

    public Map<String, Object> metadata() {
        return kv;
    }

    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** The bytes of a tensor of a supported type. */
    public MemorySegment data(TensorInfo t) throws BpmFormatException {
        if (t.type() == null) {
            throw new BpmFormatException(file.path + ": tensor " + t.name() + ": ggml type " + t.typeId()
                    + " is not supported (" + GgmlType.supported() + " are)");
        }
        return file.slice(t.offset(), t.bytes(), "tensor " + t.name());
    }

    @Override
    public void close() {
        file.close();
    }

    /** Bounds-checked sequential reads of the header. */
    private static final class Reader {
        final MappedFile f;
        long pos;
        String context = "header";

        Reader(MappedFile f) {
            this.f = f;
        }

        private MemorySegment take(long n, String field) throws BpmFormatException {
            if (n < 0 || n > f.size() - pos) {
                throw new BpmFormatException(f.path + ": truncated GGUF header: " + context + ", field " + field
                        + " needs " + n + " bytes at offset " + pos);
            }
            MemorySegment s = f.segment.asSlice(pos, n);
            pos += n;
            return s;
        }

        int u32(String field) throws BpmFormatException {
            return take(4, field).get(INT, 0);
        }

        long u64(String field) throws BpmFormatException {
            return take(8, field).get(LONG, 0);
        }

        String string(String field) throws BpmFormatException {
            return new String(bytes(field), StandardCharsets.UTF_8);
        }

        byte[] bytes(String field) throws BpmFormatException {
            long n = u64(field + " length");
            return take(n, field).toArray(ValueLayout.JAVA_BYTE);
        }

        /** A value of GGUF type {@code type}; strings in arrays stay raw bytes (token pieces need not be UTF-8). */
        Object value(int type, int depth) throws BpmFormatException {
            return switch (type) {
                case 0 -> (long) Byte.toUnsignedInt(take(1, "u8").get(ValueLayout.JAVA_BYTE, 0));
                case 1 -> (long) take(1, "i8").get(ValueLayout.JAVA_BYTE, 0);
                case 2 -> (long) Short.toUnsignedInt(take(2, "u16").get(ValueLayout.JAVA_SHORT_UNALIGNED
                        .withOrder(ByteOrder.LITTLE_ENDIAN), 0));
                case 3 -> (long) take(2, "i16").get(ValueLayout.JAVA_SHORT_UNALIGNED
                        .withOrder(ByteOrder.LITTLE_ENDIAN), 0);
                case 4 -> Integer.toUnsignedLong(u32("u32"));
                case 5 -> (long) u32("i32");
                case 6 -> (double) Float.intBitsToFloat(u32("f32"));
                case 7 -> take(1, "bool").get(ValueLayout.JAVA_BYTE, 0) != 0;
                case 8 -> depth == 0 ? string("string") : bytes("string");
                case 9 -> {
                    if (depth > 2) {
                        throw new BpmFormatException(f.path + ": " + context + ": arrays nested too deeply");
                    }
                    int elementType = u32("array type");
                    long n = u64("array length");
                    if (n < 0 || n > f.size() - pos) {
                        throw new BpmFormatException(f.path + ": " + context + ": array of " + n
                                + " elements does not fit in the file");
                    }
                    List<Object> list = new ArrayList<>((int) Math.min(n, 1 << 20));
                    for (long i = 0; i < n; i++) {
                        list.add(value(elementType, depth + 1));
                    }
                    yield list;
                }
                case 10, 11 -> u64("u64");
                case 12 -> Double.longBitsToDouble(u64("f64"));
                default -> throw new BpmFormatException(f.path + ": " + context + ": unknown value type " + type);
            };
        }
    }
}
