package io.bitplane.format;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BpmRoundTripTest {
    @TempDir
    Path dir;

    static Path write(Path file, ModelMetadata meta, List<EncodedTensor> tensors) throws Exception {
        try (BpmWriter w = BpmWriter.create(file, meta, tensors.stream().map(EncodedTensor::spec).toList())) {
            for (EncodedTensor t : tensors) {
                w.write(t);
            }
            w.finish();
        }
        return file;
    }

    @Test
    void everyEncodingReadsBackBitForBitFromAlignedMappedViews() throws Exception {
        List<EncodedTensor> tensors = TestTensors.everyEncoding(new Random(11));
        Path file = write(dir.resolve("m.bpm"), TestTensors.tinyMetadata(), tensors);
        try (BpmFile f = BpmFile.open(file)) {
            assertEquals(tensors.size(), f.tensors().size());
            for (EncodedTensor t : tensors) {
                BpmTensor read = f.tensor(t.spec().name());
                assertEquals(t.spec(), read.spec());
                assertEquals(0, read.fileOffset() % 64, "aligned " + t.spec().name());
                assertArrayEquals(t.bytes(), read.copy().bytes());
            }
            assertTrue(f.verifyChecksums().isEmpty());
            ModelMetadata m = f.metadata();
            assertEquals(TestTensors.tinyMetadata().config(), m.config());
            assertArrayEquals(new byte[] {(byte) 0xff, 'x'}, m.vocabulary().tokens().get(3), "non-UTF-8 token");
            assertEquals(-1.5f, m.vocabulary().scores()[3]);
        }
    }

    @Test
    void anUnfinishedWriteLeavesTheExistingFileAndNoTemporary() throws Exception {
        Path file = dir.resolve("keep.bpm");
        Files.writeString(file, "precious");
        List<EncodedTensor> tensors = TestTensors.everyEncoding(new Random(12));
        try (BpmWriter w = BpmWriter.create(file, TestTensors.tinyMetadata(),
                tensors.stream().map(EncodedTensor::spec).toList())) {
            w.write(tensors.get(0));
            assertThrows(IllegalArgumentException.class, () -> w.write(tensors.get(2)), "out of order");
        }
        assertEquals("precious", Files.readString(file));
        try (var listing = Files.list(dir)) {
            assertEquals(List.of(file), listing.toList());
        }
    }

    @Test
    void theWriterRefusesDuplicateNames() {
        List<EncodedTensor> t = TestTensors.everyEncoding(new Random(13));
        assertThrows(IllegalArgumentException.class, () -> BpmWriter.create(dir.resolve("d.bpm"),
                TestTensors.tinyMetadata(), List.of(t.get(0).spec(), t.get(0).spec())));
        assertFalse(Files.exists(dir.resolve("d.bpm")));
    }
}
