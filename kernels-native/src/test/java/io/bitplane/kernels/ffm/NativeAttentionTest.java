package io.bitplane.kernels.ffm;

import io.bitplane.format.TestTensors;
import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.scalar.ScalarBackend;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The C attention kernel (attention.c) called directly, in whatever implementation this run selected (the build
 * runs the tests on the best one, AVX2 and the portable C; the backend itself takes it only on AVX-512): heads of
 * whole vectors and not, one to eight query heads a KV head, positions short of a block of 16, on a block's edge
 * and long, tokens at different positions, units of one head or of a KV head's heads over uneven ranges. Every
 * result is the scalar reference's within float rounding, and each head's the same bit for bit however the heads
 * were grouped into units and ranges.
 */
class NativeAttentionTest {
    static NativeKernels kernels;

    @BeforeAll
    static void load() {
        NativeAvailability.assumeLoaded();
        kernels = NativeLibrary.kernels();
    }

    @ParameterizedTest(name = "{0} heads, {1} KV heads of {2}, positions {3} and {4}")
    @CsvSource({"1, 1, 16, 0, 1", "2, 2, 6, 14, 15", "4, 2, 16, 15, 16", "6, 2, 40, 17, 33", "8, 1, 64, 0, 600",
        "24, 8, 64, 100, 31", "4, 4, 128, 47, 16", "3, 1, 24, 63, 5", "16, 2, 64, 255, 256"})
    void matchesTheReferenceAndDoesNotDependOnTheUnits(int heads, int kvHeads, int headSize, int position0,
                                                       int position1) {
        AttentionShape s = new AttentionShape(heads, kvHeads, headSize);
        Random rnd = new Random(heads * 1000L + headSize + position0);
        int[] positions = {position0, position1};
        int cached = Math.max(position0, position1) + 1;
        float[] q = TestTensors.gaussian(rnd, 2 * s.queryDim(), 1f);
        float[] keys = TestTensors.gaussian(rnd, cached * s.kvDim(), 0.3f);
        float[] values = TestTensors.gaussian(rnd, cached * s.kvDim(), 1f);
        float[] expected = BackendConformance.attention(new ScalarBackend(), q, keys, values, positions, s);

        int kvMul = heads / kvHeads;
        float[] byGroups = run(q, keys, values, positions, s, kvMul, 3);
        float[] byHeads = run(q, keys, values, positions, s, 1, 5);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], byGroups[i], 1e-5f * (1 + Math.abs(expected[i])),
                    "value " + i + ", isa " + kernels.isa());
        }
        assertArrayEquals(byGroups, byHeads, "a head alone against its KV head's heads together");
    }

    /** The kernel over units of {@code unitHeads} query heads, in ranges of {@code step} units (the last shorter). */
    private static float[] run(float[] q, float[] keys, float[] values, int[] positions, AttentionShape s,
                               int unitHeads, int step) {
        float[] out = new float[q.length];
        Arrays.fill(out, Float.NaN); // every value must be written
        int units = positions.length * s.nHeads() / unitHeads;
        float[] scores = new float[unitHeads * (Math.max(positions[0], positions[1]) + 1)];
        for (int u = 0; u < units; u += step) {
            kernels.attention(MemorySegment.ofArray(q), MemorySegment.ofArray(keys), MemorySegment.ofArray(values),
                    MemorySegment.ofArray(out), MemorySegment.ofArray(positions), s.nHeads(), s.nKvHeads(),
                    s.headSize(), unitHeads, u, Math.min(units, u + step), MemorySegment.ofArray(scores));
        }
        return out;
    }
}
