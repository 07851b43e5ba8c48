package io.bitplane.format.importer;

import io.bitplane.format.Dequantizer;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.SharedData;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Every ggml type Bitplane imports, re-laid as .bpm and dequantized by Bitplane, equals ggml's own dequantization
 * (quant-types.expected.gguf, written by ggml's to_float) bit for bit.
 */
class GgmlFixtureTest {

    @ParameterizedTest
    @ValueSource(strings = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "tq1_0", "tq2_0"})
    void dequantizationMatchesGgmlBitForBit(String type) throws Exception {
        try (GgufFile q = GgufFile.open(SharedData.file("fixtures/gguf/quant-types.gguf"));
             GgufFile expected = GgufFile.open(SharedData.file("fixtures/gguf/quant-types.expected.gguf"))) {
            GgufFile.TensorInfo t = q.tensors().get("w." + type);
            GgufFile.TensorInfo e = expected.tensors().get("w." + type + ".f32");
            assertEquals(type.toUpperCase(), t.type().name());
            EncodedTensor bpm = GgmlToBpm.convert(t.name(), t.shape(), t.type(), q.data(t));
            assertEquals(t.type().encoding(), bpm.spec().encoding());
            float[] ours = Dequantizer.toFloats(bpm.spec(), bpm.segment());
            float[] ggml = expected.data(e).toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
            assertEquals(ggml.length, ours.length);
            int[] ourBits = new int[ours.length];
            int[] ggmlBits = new int[ours.length];
            for (int i = 0; i < ours.length; i++) {
                ourBits[i] = Float.floatToRawIntBits(ours[i]);
                ggmlBits[i] = Float.floatToRawIntBits(ggml[i]);
            }
            assertArrayEquals(ggmlBits, ourBits, "w." + type);
        }
    }
}
