package io.bitplane.format;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Damaged and hostile files: each gives a {@link BpmFormatException} naming the file and the problem, or (for
 * damage inside tensor data) a checksum report naming the tensor, and never any other exception.
 */
class BpmCorruptionTest {
    @TempDir
    Path dir;
    Path good;
    byte[] bytes;
    List<EncodedTensor> tensors;

    @BeforeEach
    void writeGoodFile() throws Exception {
        tensors = TestTensors.everyEncoding(new Random(21));
        good = BpmRoundTripTest.write(dir.resolve("good.bpm"), TestTensors.tinyMetadata(), tensors);
        bytes = Files.readAllBytes(good);
    }

    private Path withBytes(byte[] b) throws Exception {
        Path p = dir.resolve("bad.bpm");
        Files.write(p, b);
        return p;
    }

    /** A hand-mangled header with its CRC recomputed, so the check behind the CRC is the one that must fire. */
    private Path mangled(Consumer<ByteBuffer> edit) throws Exception {
        byte[] b = bytes.clone();
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        edit.accept(buf);
        BpmHeaderChecksum.recompute(b);
        return withBytes(b);
    }

    private String openError(Path p) {
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> BpmFile.open(p).close());
        assertTrue(e.getMessage().startsWith(p.toString() + ": "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e.getMessage();
    }

    /** Byte offset of the directory entry field of tensor {@code index}, walking the real directory. */
    private int entryField(int index, int fieldOffsetAfterName) {
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int pos = (int) (48 + buf.getLong(16)) + 4;
        for (int i = 0; ; i++) {
            int nameLen = Short.toUnsignedInt(buf.getShort(pos));
            int rank = bytes[pos + 2 + nameLen + 3];
            if (i == index) {
                return pos + 2 + nameLen + fieldOffsetAfterName;
            }
            pos += 2 + nameLen + 8 + 8 * rank + 20;
        }
    }

    @Test
    void wrongMagicVersionAndFlags() throws Exception {
        byte[] b = bytes.clone();
        b[0] = 'X';
        assertTrue(openError(withBytes(b)).contains("not a .bpm file"));
        assertTrue(openError(mangled(buf -> buf.putInt(8, 99))).contains("unsupported format version 99"));
        assertTrue(openError(mangled(buf -> buf.putInt(12, 4))).contains("unknown header flags"));
    }

    @Test
    void everyTruncationIsReported() throws Exception {
        for (int len = 0; len < bytes.length; len += 1 + len / 7) {
            String msg = openError(withBytes(Arrays.copyOf(bytes, len)));
            assertTrue(msg.contains("truncated") || msg.contains("outside") || msg.contains("bad data offset"),
                    len + ": " + msg);
        }
    }

    @Test
    void headerDamageIsCaughtByTheHeaderChecksum() throws Exception {
        byte[] b = bytes.clone();
        b[60] ^= 0x10; // inside the metadata JSON
        assertTrue(openError(withBytes(b)).contains("header checksum mismatch"));
    }

    @Test
    void tensorDamageIsNamedByVerify() throws Exception {
        byte[] b = bytes.clone();
        b[b.length - 3] ^= 1; // the last tensor's data
        try (BpmFile f = BpmFile.open(withBytes(b))) {
            List<String> problems = f.verifyChecksums();
            assertEquals(1, problems.size());
            assertTrue(problems.get(0).contains("tensor norm: checksum mismatch"), problems.get(0));
        }
    }

    @Test
    void directoryFieldsAreValidated() throws Exception {
        // Entry layout after the name: encoding(0) layout(1) hint(2) rank(3) group(4..7) shape(8..) ...
        assertTrue(openError(mangled(buf -> buf.put(entryField(0, 0), (byte) 42))).contains("unknown encoding id 42"));
        assertTrue(openError(mangled(buf -> buf.put(entryField(1, 1), (byte) 3))).contains("unknown layout id 3"));
        assertTrue(openError(mangled(buf -> buf.put(entryField(1, 2), (byte) 7))).contains("unknown activation"));
        assertTrue(openError(mangled(buf -> buf.put(entryField(0, 3), (byte) 5))).contains("rank 5"));
        String msg = openError(mangled(buf -> buf.putLong(entryField(0, 8), buf.getLong(entryField(0, 8)) + 1)));
        assertTrue(msg.contains("tensor t0.f32: byte length") && msg.contains("disagrees"), msg);
        // Encoding changed from F32 to F16: the stored length no longer fits the shape.
        assertTrue(openError(mangled(buf -> buf.put(entryField(0, 0), (byte) 1))).contains("disagrees"));
        assertTrue(openError(mangled(buf -> buf.putInt(entryField(4, 4), 0))).contains("needs a group size"));
    }

    @Test
    void offsetsOutsideTheFileOrOverlappingAreRejected() throws Exception {
        int rank0 = 2;
        int offsetField = 8 + 8 * rank0;
        String msg = openError(mangled(buf -> buf.putLong(entryField(0, offsetField), 1L << 50)));
        assertTrue(msg.contains("tensor t0.f32") && msg.contains("outside"), msg);
        msg = openError(mangled(buf -> buf.putLong(entryField(0, offsetField), 64 * 3 + 1)));
        assertTrue(msg.contains("outside") || msg.contains("aligned"), msg);
        // Point tensor 1 at tensor 0's bytes: the two overlap.
        msg = openError(mangled(buf -> buf.putLong(entryField(1, offsetField),
                buf.getLong(entryField(0, offsetField)))));
        assertTrue(msg.contains("overlap"), msg);
        msg = openError(mangled(buf -> buf.putLong(16, Long.MAX_VALUE)));
        assertTrue(msg.contains("truncated or corrupt header"), msg);
    }

    @Test
    void badMetadataIsNamed() throws Exception {
        String json = new String(bytes, 48, (int) ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(16),
                java.nio.charset.StandardCharsets.UTF_8);
        int at = 48 + json.indexOf("\"dim\":8") + 7;
        String msg = openError(mangled(buf -> buf.put(at - 1, (byte) 'x')));
        assertTrue(msg.contains("metadata is not valid JSON"), msg);
        int nh = 48 + json.indexOf("\"n_heads\":2") + 10;
        msg = openError(mangled(buf -> buf.put(nh, (byte) '3')));
        assertTrue(msg.contains("dim 8 is not a multiple of n_heads 3"), msg);
    }

    /**
     * Seeded mutation fuzzing: random bit flips, byte runs, truncations and 64-bit field overwrites. The reader
     * must answer with a format error, or open a file whose checksums then either flag the damage or whose tensors
     * and metadata are exactly the original's (the mutation hit padding).
     */
    @Test
    void mutatedFilesNeverEscapeAsOtherExceptionsNorLoadWrongData() throws Exception {
        Random rnd = new Random(22);
        int opened = 0;
        for (int iter = 0; iter < 3000; iter++) {
            byte[] b = bytes.clone();
            int kind = rnd.nextInt(4);
            int at = rnd.nextInt(b.length);
            switch (kind) {
                case 0 -> b[at] ^= (byte) (1 << rnd.nextInt(8));
                case 1 -> {
                    for (int i = at; i < Math.min(b.length, at + 1 + rnd.nextInt(16)); i++) {
                        b[i] = (byte) rnd.nextInt();
                    }
                }
                case 2 -> b = Arrays.copyOf(b, at);
                default -> {
                    if (at + 8 <= b.length) {
                        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, rnd.nextLong() >>> rnd.nextInt(64));
                    }
                }
            }
            // Half of the mutations re-seal the header CRC, so that deeper checks meet the damage too.
            Path p = rnd.nextBoolean() ? withBytes(b) : reseal(b);
            try (BpmFile f = BpmFile.open(p)) {
                opened++;
                if (f.verifyChecksums().isEmpty() && ModelCheck.problems(f).isEmpty()) {
                    for (EncodedTensor t : tensors) {
                        if (!f.has(t.spec().name()) || !Arrays.equals(t.bytes(), f.tensor(t.spec().name()).copy().bytes())) {
                            fail("iteration " + iter + ": a damaged file passed every check with different data");
                        }
                    }
                }
            } catch (BpmFormatException expected) {
                assertTrue(expected.getMessage().startsWith(p.toString()), expected.getMessage());
            } catch (Exception | Error e) {
                throw new AssertionError("iteration " + iter + " (mutation " + kind + " at " + at + "): " + e, e);
            }
        }
        assertTrue(opened > 0, "some mutations (padding, tensor data) should still open");
    }

    private Path reseal(byte[] b) throws Exception {
        BpmHeaderChecksum.recompute(b);
        return withBytes(b);
    }

    @Test
    void theGoodFileIsGood() throws Exception {
        try (BpmFile f = BpmFile.open(good)) {
            assertTrue(f.verifyChecksums().isEmpty());
            assertArrayEquals(tensors.get(0).bytes(), f.tensor("t0.f32").copy().bytes());
        }
    }
}
