package io.bitplane.format;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An open .bpm file: memory-mapped once, validated (FORMAT.md section 7), its tensors handed out as views of the
 * mapping without copying. Every check happens before a byte is trusted, so a damaged or hostile file gives a
 * {@link BpmFormatException} that names the file, the tensor and the field, never an out-of-bounds access.
 *
 * <p>Thread-safe for reading once open. {@link #close()} unmaps the file: views handed out before are invalid after.
 */
public final class BpmFile implements AutoCloseable {
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final ModelMetadata metadata;
    private final Map<String, BpmTensor> tensors;

    private BpmFile(Path path, Arena arena, MemorySegment file, ModelMetadata metadata, Map<String, BpmTensor> t) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.metadata = metadata;
        this.tensors = t;
    }

    /** Opens and validates the structure; tensor checksums are checked by {@link #verifyChecksums()}. */
    public static BpmFile open(Path path) throws IOException {
        String where = path.toString();
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < BpmLayout.FIXED_HEADER) {
                throw new BpmFormatException(where + ": truncated: " + size + " bytes, a .bpm header needs "
                        + BpmLayout.FIXED_HEADER);
            }
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            BpmFile f = parse(path, where, arena, seg);
            return f;
        } catch (NoSuchFileException e) {
            arena.close();
            throw new NoSuchFileException(where, null, "no such model file");
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static BpmFile parse(Path path, String where, Arena arena, MemorySegment seg) throws BpmFormatException {
        long size = seg.byteSize();
        byte[] magic = seg.asSlice(0, 8).toArray(ValueLayout.JAVA_BYTE);
        if (!Arrays.equals(magic, BpmLayout.MAGIC)) {
            throw new BpmFormatException(where + ": not a .bpm file (magic is "
                    + new String(magic, StandardCharsets.ISO_8859_1).replaceAll("[^\\x20-\\x7e]", "?")
                    + ", expected BITPLANE)");
        }
        int version = seg.get(INT, 8);
        if (version != BpmLayout.VERSION) {
            throw new BpmFormatException(where + ": unsupported format version " + Integer.toUnsignedString(version)
                    + " (this reader knows version " + BpmLayout.VERSION + ")");
        }
        int flags = seg.get(INT, 12);
        if ((flags & ~BpmLayout.KNOWN_FLAGS) != 0) {
            throw new BpmFormatException(where + ": unknown header flags 0x" + Integer.toHexString(flags));
        }
        long metaLen = seg.get(LONG, 16);
        long dirLen = seg.get(LONG, 24);
        long dataOffset = seg.get(LONG, 32);
        long headerEnd = BpmLayout.FIXED_HEADER + metaLen + dirLen;
        if (metaLen < 0 || dirLen < 0 || metaLen > size || dirLen > size || headerEnd > size) {
            throw new BpmFormatException(where + ": truncated or corrupt header: metadata length " + metaLen
                    + " and directory length " + dirLen + " do not fit in a file of " + size + " bytes");
        }
        if (dataOffset < headerEnd || dataOffset > size || dataOffset % BpmLayout.ALIGNMENT != 0) {
            throw new BpmFormatException(where + ": bad data offset " + dataOffset + " (header ends at "
                    + headerEnd + ", file has " + size + " bytes, must be a multiple of 64)");
        }
        int stored = seg.get(INT, BpmLayout.CRC_FIELD);
        int actual = Crc32c.of(seg.asSlice(0, BpmLayout.CRC_FIELD), seg.asSlice(BpmLayout.FIXED_HEADER,
                metaLen + dirLen));
        if (stored != actual) {
            throw new BpmFormatException(where + ": header checksum mismatch (stored " + hex(stored) + ", computed "
                    + hex(actual) + "): the header, metadata or tensor directory is damaged");
        }
        if (metaLen > Integer.MAX_VALUE - 16) {
            throw new BpmFormatException(where + ": metadata of " + metaLen + " bytes is too large");
        }
        ModelMetadata metadata = MetadataJson.read(
                seg.asSlice(BpmLayout.FIXED_HEADER, metaLen).toArray(ValueLayout.JAVA_BYTE), where);
        if (flags != BpmLayout.flagsOf(metadata)) {
            throw new BpmFormatException(where + ": header flags 0x" + Integer.toHexString(flags)
                    + " disagree with the metadata (rope frequency factors "
                    + (metadata.config().ropeFreqFactors() != null ? "present" : "absent") + ")");
        }
        Map<String, BpmTensor> tensors = readDirectory(where, seg, BpmLayout.FIXED_HEADER + metaLen, dirLen,
                dataOffset);
        return new BpmFile(path, arena, seg, metadata, Collections.unmodifiableMap(tensors));
    }

    private static Map<String, BpmTensor> readDirectory(String where, MemorySegment seg, long start, long len,
                                                        long dataOffset) throws BpmFormatException {
        Cursor c = new Cursor(where, seg.asSlice(start, len));
        long count = Integer.toUnsignedLong(c.i32("tensor count"));
        long minEntry = BpmLayout.entryBytes(1, 1);
        if (count > len / minEntry) {
            throw new BpmFormatException(where + ": tensor directory claims " + count + " tensors but holds "
                    + len + " bytes");
        }
        Map<String, BpmTensor> out = new LinkedHashMap<>();
        List<BpmTensor> byOffset = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            c.entry = i;
            int nameLen = Short.toUnsignedInt(c.i16("name length"));
            if (nameLen == 0 || nameLen > BpmLayout.MAX_NAME) {
                throw c.error("name length " + nameLen + " (1.." + BpmLayout.MAX_NAME + ")");
            }
            String name = c.utf8(nameLen);
            c.name = name;
            int encodingId = c.u8("encoding");
            int layout = c.u8("layout");
            int hintId = c.u8("activation hint");
            int rank = c.u8("rank");
            int group = c.i32("group size");
            Encoding encoding = Encoding.ofId(encodingId);
            if (encoding == null) {
                throw c.error("unknown encoding id " + encodingId);
            }
            ActivationHint hint = ActivationHint.ofId(hintId);
            if (hint == null) {
                throw c.error("unknown activation hint " + hintId);
            }
            if (rank < 1 || rank > 2) {
                throw c.error("rank " + rank + " (1 or 2 allowed)");
            }
            long[] shape = new long[rank];
            for (int d = 0; d < rank; d++) {
                shape[d] = c.i64("shape");
            }
            long offset = c.i64("offset");
            long length = c.i64("length");
            int crc = c.i32("checksum");
            TensorSpec spec = new TensorSpec(name, shape, encoding, group, layout, hint);
            String problem = spec.problem();
            if (problem != null) {
                throw c.error(problem);
            }
            if (length != spec.byteLength()) {
                throw c.error("byte length " + length + " disagrees with " + encoding + " "
                        + Arrays.toString(shape) + (group > 0 ? " group " + group : "") + ", which needs "
                        + spec.byteLength());
            }
            if (offset < dataOffset || offset % BpmLayout.ALIGNMENT != 0 || offset > seg.byteSize()
                    || length > seg.byteSize() - offset) {
                throw c.error("bytes [" + offset + ", " + (offset + length) + ") lie outside the tensor data of "
                        + "the file (" + dataOffset + ".." + seg.byteSize() + ") or are not 64-byte aligned"
                        + (offset + length > seg.byteSize() ? ": the file is truncated" : ""));
            }
            BpmTensor t = new BpmTensor(spec, seg.asSlice(offset, length), offset, crc);
            if (out.putIfAbsent(name, t) != null) {
                throw c.error("duplicate tensor name");
            }
            byOffset.add(t);
        }
        if (c.remaining() != 0) {
            throw new BpmFormatException(where + ": tensor directory has " + c.remaining() + " unexplained bytes");
        }
        byOffset.sort(Comparator.comparingLong(BpmTensor::fileOffset));
        for (int i = 1; i < byOffset.size(); i++) {
            BpmTensor a = byOffset.get(i - 1);
            BpmTensor b = byOffset.get(i);
            if (a.fileOffset() + a.data().byteSize() > b.fileOffset()) {
                throw new BpmFormatException(where + ": tensors " + a.name() + " and " + b.name() + " overlap");
            }
        }
        return out;
    }

    public Path path() {
        return path;
    }

    public ModelMetadata metadata() {
        return metadata;
    }

    /** Tensors in file order. */
    public List<BpmTensor> tensors() {
        return List.copyOf(tensors.values());
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    /** The tensor of this name, or an exception that names the file and the missing tensor. */
    public BpmTensor tensor(String name) throws BpmFormatException {
        BpmTensor t = tensors.get(name);
        if (t == null) {
            throw new BpmFormatException(path + ": no tensor named " + name);
        }
        return t;
    }

    public long fileSize() {
        return file.byteSize();
    }

    /** Checks every tensor's CRC32C; returns one line per damaged tensor (empty when the file is sound). */
    public List<String> verifyChecksums() {
        List<String> problems = new ArrayList<>();
        for (BpmTensor t : tensors.values()) {
            int actual = Crc32c.of(t.data());
            if (actual != t.crc()) {
                problems.add(path + ": tensor " + t.name() + ": checksum mismatch (stored " + hex(t.crc())
                        + ", computed " + hex(actual) + ")");
            }
        }
        return problems;
    }

    @Override
    public void close() {
        arena.close();
    }

    private static String hex(int v) {
        return String.format("%08x", v);
    }

    /** Bounds-checked reading of the directory; errors name the entry and field. */
    private static final class Cursor {
        private final String where;
        private final MemorySegment seg;
        private long pos;
        int entry = -1;
        String name;

        Cursor(String where, MemorySegment seg) {
            this.where = where;
            this.seg = seg;
        }

        long remaining() {
            return seg.byteSize() - pos;
        }

        private void need(long n, String field) throws BpmFormatException {
            if (remaining() < n) {
                throw error("directory ends inside field " + field);
            }
        }

        BpmFormatException error(String what) {
            String who = name != null ? "tensor " + name : entry >= 0 ? "directory entry " + entry : "directory";
            return new BpmFormatException(where + ": " + who + ": " + what);
        }

        int u8(String field) throws BpmFormatException {
            need(1, field);
            return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, pos++));
        }

        short i16(String field) throws BpmFormatException {
            need(2, field);
            short v = seg.get(SHORT, pos);
            pos += 2;
            return v;
        }

        int i32(String field) throws BpmFormatException {
            need(4, field);
            int v = seg.get(INT, pos);
            pos += 4;
            return v;
        }

        long i64(String field) throws BpmFormatException {
            need(8, field);
            long v = seg.get(LONG, pos);
            pos += 8;
            return v;
        }

        String utf8(int n) throws BpmFormatException {
            need(n, "name");
            byte[] b = seg.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE);
            pos += n;
            try {
                return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .decode(java.nio.ByteBuffer.wrap(b)).toString();
            } catch (CharacterCodingException e) {
                throw error("tensor name is not valid UTF-8");
            }
        }
    }
}
