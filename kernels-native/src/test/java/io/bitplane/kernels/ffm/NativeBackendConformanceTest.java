package io.bitplane.kernels.ffm;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native kernels against the scalar oracle, on the shared randomized shapes and misaligned weights. The build
 * runs this three times: on the best implementation of this CPU, and with {@code -Dbitplane.native.isa=avx2} and
 * {@code portable}. Products with float activations over tiled weights, INT4 x INT8 outside the group lanes, groups
 * that are not a multiple of 32 and BINARY x binary in groups run on the Java backend here (the default); {@link
 * NativeFloatKernelsConformanceTest} runs them in C.
 */
class NativeBackendConformanceTest extends BackendConformance {
    @Override
    protected Backend createBackend() {
        NativeAvailability.assumeLoaded();
        Backend b = Backends.create("native", 2);
        assertEquals("native", b.name());
        assertTrue(b.description().contains("float-activation products of tiled weights")
                && b.description().contains("INT4 x INT8 products outside the group lanes")
                && b.description().contains("products over groups that are not a multiple of 32")
                && b.description().contains("binary x binary in groups on java"),
                b.description());
        String wanted = System.getProperty("bitplane.native.isa", "best");
        if (wanted.equals("portable")) {
            assertTrue(b.description().contains("portable C"), b.description());
        }
        if (wanted.equals("avx2") && CpuFlags.has("avx2", "fma", "f16c")) {
            assertTrue(b.description().contains("AVX2+FMA"), b.description());
        }
        if (wanted.equals("best") && CpuFlags.has("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                "avx512_vnni")) {
            assertTrue(b.description().contains("AVX-512 VNNI"), b.description());
        }
        return b;
    }

    @Test
    void closingFreesTheUploadedWeights() {
        assertClosingFreesTheUploadedWeights(createBackend());
    }
}
