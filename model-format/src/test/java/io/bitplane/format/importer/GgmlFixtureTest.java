package io.bitplane.format.importer;

import io.bitplane.format.Dequantizer;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.SharedData;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every ggml type Bitplane imports against ggml's own dequantization: the types of quant-types.gguf re-laid as .bpm
 * and dequantized by Bitplane equal it bit for bit (quant-types.expected.gguf, written by ggml's to_float); Q5_0,
 * Q5_1, the k-quants, IQ4_NL and IQ4_XS against ggml-subblock-types.gguf (beside this test's resources; how it was made is in the
 * README there): their floats bit for bit, their .bpm form within what its rounding allows.
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

    private static final ValueLayout.OfFloat FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest
    @ValueSource(strings = {"q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs"})
    void subBlockTypesMatchGgml(String type) throws Exception {
        Path fixture = Path.of(GgmlFixtureTest.class.getResource("ggml-subblock-types.gguf").toURI());
        try (GgufFile g = GgufFile.open(fixture)) {
            GgufFile.TensorInfo t = g.tensors().get("w." + type);
            assertEquals(type.toUpperCase(), t.type().name());
            float[] ggml = g.data(g.tensors().get("w." + type + ".f32")).toArray(FLOAT);
            GgmlSourceTensor source = new GgmlSourceTensor(t.name(), t.shape(), t.type(), fixture, () -> g.data(t));
            float[] floats = source.floats();
            for (int i = 0; i < ggml.length; i++) {
                assertEquals(Float.floatToRawIntBits(ggml[i]), Float.floatToRawIntBits(floats[i]),
                        type + " value " + i + ": " + floats[i] + " where ggml has " + ggml[i]);
            }

            EncodedTensor bpm = source.lossless();
            assertEquals(t.type().bpmSpec.encoding(), bpm.spec().encoding());
            assertEquals(t.type().bpmSpec.groupSize(), bpm.spec().groupSize());
            float[] relaid = Dequantizer.toFloats(bpm.spec(), bpm.segment());
            int group = t.type().bpmSpec.groupSize();
            double worst = 0;
            for (int g0 = 0; g0 < ggml.length; g0 += group) {
                float reach = 0;  // the largest magnitude in the group
                for (int i = g0; i < g0 + group; i++) {
                    reach = Math.max(reach, Math.abs(ggml[i]));
                }
                for (int i = g0; i < g0 + group; i++) {
                    double err = Math.abs(relaid[i] - ggml[i]);
                    switch (t.type().fidelity) {
                        case EXACT -> assertEquals(Float.floatToRawIntBits(ggml[i]),
                                Float.floatToRawIntBits(relaid[i]), type + " value " + i);
                        // the codes kept, each group's scale and min within 2^-11 of ggml's
                        case F16_SCALES -> assertTrue(err <= 0x1p-9 * reach,
                                type + " value " + i + ": " + relaid[i] + " where ggml has " + ggml[i]);
                        // rounded to INT8 codes of the group's absmax / 127 (an f16): half a step
                        case REQUANTIZED -> assertTrue(err <= 0.502 * reach / 127,
                                type + " value " + i + ": " + relaid[i] + " where ggml has " + ggml[i]);
                        default -> throw new IllegalStateException();
                    }
                    worst = Math.max(worst, err / Math.max(reach, Float.MIN_NORMAL));
                }
            }
            assertTrue(t.type().fidelity == GgmlType.Fidelity.EXACT || worst > 0, type + " changed nothing?");
        }
    }
}
