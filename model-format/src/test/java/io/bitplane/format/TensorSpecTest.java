package io.bitplane.format;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

class TensorSpecTest {

    @Test
    void byteLengthsFollowTheFormat() {
        // 3 rows of 100: 2 words per plane row, 4 groups of 32 per row.
        assertEquals(3 * 100 * 4, TensorSpec.of("a", Encoding.F32, 0, 3, 100).byteLength());
        assertEquals(3 * 100 * 2, TensorSpec.of("a", Encoding.BF16, 0, 3, 100).byteLength());
        assertEquals(320 + 3 * 4 * 2, TensorSpec.of("a", Encoding.INT8, 32, 3, 100).byteLength());
        TensorSpec int4 = TensorSpec.of("a", Encoding.INT4, 32, 3, 100);
        assertEquals(3 * 4 * 2 * 8, int4.valueBytes());
        assertEquals(192, int4.scalesOffset());
        assertEquals(192 + 24, int4.byteLength());
        TensorSpec asym = TensorSpec.of("a", Encoding.INT4_ASYM, 32, 3, 100);
        assertEquals(256, asym.minsOffset());
        assertEquals(256 + 24, asym.byteLength());
        TensorSpec ternary = TensorSpec.of("a", Encoding.TERNARY, 0, 3, 100);
        assertEquals(1, ternary.groupsPerRow());
        assertEquals(3 * 2 * 2 * 8, ternary.valueBytes());
        assertEquals(128 + 6, ternary.byteLength());
        assertEquals(64 + 6, TensorSpec.of("a", Encoding.BINARY, 0, 3, 100).byteLength());
    }

    @Test
    void bitsPerWeightOfLargeMatricesAreNearTheirNominalWidth() {
        assertEquals(1.0039, TensorSpec.of("a", Encoding.BINARY, 0, 4096, 4096).bitsPerWeight(), 1e-3);
        assertEquals(2.0039, TensorSpec.of("a", Encoding.TERNARY, 0, 4096, 4096).bitsPerWeight(), 1e-3);
        assertEquals(4.5, TensorSpec.of("a", Encoding.INT4, 32, 4096, 4096).bitsPerWeight(), 1e-6);
        assertEquals(8.5, TensorSpec.of("a", Encoding.INT8, 32, 4096, 4096).bitsPerWeight(), 1e-6);
    }

    @Test
    void invalidSpecsAreNamed() {
        assertNull(TensorSpec.of("a", Encoding.F16, 0, 5).problem());
        assertNotNull(TensorSpec.of("a", Encoding.INT4, 32, 5).problem(), "quantized vector");
        assertNotNull(TensorSpec.of("a", Encoding.INT4, 0, 5, 5).problem(), "int4 without group");
        assertNotNull(TensorSpec.of("a", Encoding.F32, 32, 5, 5).problem(), "float with group");
        assertNotNull(TensorSpec.of("a", Encoding.F32, 0, 0, 5).problem(), "zero dimension");
        assertNotNull(TensorSpec.of("a", Encoding.F32, 0, 1L << 40, 1L << 40).problem(), "overflow");
        assertNotNull(new TensorSpec("a", new long[] {4, 4}, Encoding.F32, 0, 9, ActivationHint.F32).problem(),
                "unknown layout");
        assertNull(new TensorSpec("a", new long[] {4, 64}, Encoding.BINARY, 0, 0, ActivationHint.BINARY).problem());
        assertNotNull(new TensorSpec("a", new long[] {4, 64}, Encoding.TERNARY, 0, 0, ActivationHint.BINARY)
                .problem(), "binary activations on ternary weights");
    }
}
