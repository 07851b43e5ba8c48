package io.bitplane.format.synth;

import io.bitplane.format.BpmFile;
import io.bitplane.format.ModelCheck;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.quant.QuantSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticModelTest {
    @TempDir
    Path dir;

    static final ModelConfig SMALL = new ModelConfig(64, 128, 2, 4, 2, 300, 64, 10000f, 1e-5f, true);

    private Path write(long seed, String name) throws Exception {
        Path out = dir.resolve(name);
        try (ModelSource s = SyntheticModel.of(SMALL, seed)) {
            Converter.convert(s, new Recipe(QuantSpec.parse("ternary"), null, List.of()), out,
                    Converter.Progress.NONE);
        }
        return out;
    }

    @Test
    void theSameSeedWritesTheSameFileAndAnotherSeedAnother() throws Exception {
        byte[] a = Files.readAllBytes(write(7, "a.bpm"));
        assertArrayEquals(a, Files.readAllBytes(write(7, "b.bpm")));
        assertFalse(java.util.Arrays.equals(a, Files.readAllBytes(write(8, "c.bpm"))));
    }

    @Test
    void theModelIsConsistentAndItsFileIsAnOrdinaryFile() throws Exception {
        Path p = write(1, "m.bpm");
        try (BpmFile f = BpmFile.open(p)) {
            assertTrue(ModelCheck.problems(f).isEmpty(), ModelCheck.problems(f).toString());
            assertEquals(300, f.metadata().vocabulary().size());
            float[] w = f.tensor("blk.0.attn_q.weight").toFloats();
            assertTrue(w[0] != 0 || w[1] != 0);
        }
        assertEquals("rw-r--r--", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(p)), "converted files are readable like any file, not 0600");
    }

    @Test
    void impossibleShapesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> SyntheticModel.of(
                new ModelConfig(64, 128, 2, 5, 1, 300, 64, 10000f, 1e-5f, true), 1));
        assertThrows(IllegalArgumentException.class, () -> SyntheticModel.of(
                new ModelConfig(64, 128, 2, 4, 2, 100, 64, 10000f, 1e-5f, true), 1));
    }
}
