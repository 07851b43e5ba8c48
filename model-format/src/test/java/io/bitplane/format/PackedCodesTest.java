package io.bitplane.format;

import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Layout 1 holds exactly the values of layout 0, at the sizes FORMAT.md gives, through a file and back. */
class PackedCodesTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource({"int4@32, 7, 100", "int4@32, 1, 1", "int4-asym@64, 5, 130", "ternary, 9, 200", "ternary@32, 3, 129",
        "int4@128, 2, 64", "ternary, 1, 128", "ternary, 4, 1000"})
    void packingKeepsEveryValueAndScale(String spec, int rows, int cols) {
        Random rnd = new Random(rows * 7L + cols);
        EncodedTensor planes = Quantizer.quantize("w", new long[] {rows, cols}, TestTensors.gaussian(rnd,
                rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.INT8);
        EncodedTensor packed = PackedCodes.relayout(planes);
        assertEquals(TensorSpec.LAYOUT_PACKED, packed.spec().layout());
        assertEquals(null, packed.spec().problem());
        assertEquals(packed.spec().byteLength(), packed.bytes().length);
        int b = PackedCodes.bits(planes.spec().encoding());
        long rowBytes = (cols + 256 / b - 1) / (256 / b) * 32;
        assertEquals(rows * rowBytes, packed.spec().valueBytes(), "whole 32-byte blocks per row");
        assertArrayEquals(Dequantizer.toFloats(planes.spec(), planes.segment()),
                Dequantizer.toFloats(packed.spec(), packed.segment()));
        int[] row = new int[cols];
        for (int r = 0; r < rows; r++) {
            PackedCodes.decodeRow(packed.spec(), packed.segment(), r, row);
            for (int c = 0; c < cols; c++) {
                assertEquals(Dequantizer.planeCode(planes.spec(), planes.segment(), r, c), row[c], "row code " + c);
                assertEquals(Dequantizer.planeCode(planes.spec(), planes.segment(), r, c),
                        Dequantizer.planeCode(packed.spec(), packed.segment(), r, c), "code " + r + "," + c);
            }
            // the row's padding past K, to whole blocks, holds zero fields (FORMAT.md section 5)
            for (long c = cols; c < rowBytes * 8 / b; c++) {
                long j = c % (256 / b);
                int at = (int) (r * rowBytes + c / (256 / b) * 32 + j % 32);
                assertEquals(0, (packed.bytes()[at] >>> (j / 32 * b)) & ((1 << b) - 1), "padding field " + c);
            }
        }
    }

    @Test
    void fieldsSitWhereTheFormatSays() {
        // INT4: value 33 of a row is the high nibble of byte 1; ternary: value 97 is bits 6-7 of byte 1.
        EncodedTensor int4 = Quantizer.quantize("w", new long[] {1, 64}, ramp(64), QuantSpec.parse("int4-rtn@64"),
                ActivationHint.F32);
        EncodedTensor p = PackedCodes.relayout(int4);
        int u33 = Dequantizer.planeCode(int4.spec(), int4.segment(), 0, 33) + 8;
        assertEquals(u33, (p.bytes()[1] >>> 4) & 15);
        EncodedTensor ter = Quantizer.quantize("t", new long[] {1, 128}, ramp(128), QuantSpec.parse("ternary"),
                ActivationHint.F32);
        EncodedTensor q = PackedCodes.relayout(ter);
        int t97 = Dequantizer.planeCode(ter.spec(), ter.segment(), 0, 97);
        assertEquals(t97 + 1, (q.bytes()[1] >>> 6) & 3);
    }

    @Test
    void aFileWithPackedTensorsReadsBack() throws Exception {
        Random rnd = new Random(3);
        EncodedTensor t = PackedCodes.relayout(Quantizer.quantize("blk.0.ffn_up.weight", new long[] {6, 300},
                TestTensors.gaussian(rnd, 1800, 0.1f), QuantSpec.parse("ternary"), ActivationHint.INT8));
        Path file = BpmRoundTripTest.write(dir.resolve("p.bpm"), TestTensors.tinyMetadata(), List.of(t));
        try (BpmFile f = BpmFile.open(file)) {
            BpmTensor read = f.tensor(t.spec().name());
            assertEquals(t.spec(), read.spec());
            assertArrayEquals(t.bytes(), read.copy().bytes());
        }
    }

    @Test
    void encodingsWithoutAPackedLayoutAreRefused() {
        TensorSpec int8 = new TensorSpec("w", new long[] {2, 64}, Encoding.INT8, 32, TensorSpec.LAYOUT_PACKED,
                ActivationHint.F32);
        assertTrue(int8.problem().contains("no layout 1"), int8.problem());
        EncodedTensor binary = Quantizer.quantize("b", new long[] {2, 64}, new float[128], QuantSpec.parse("binary"),
                ActivationHint.F32);
        assertThrows(IllegalArgumentException.class, () -> PackedCodes.relayout(binary));
        TensorSpec unknown = new TensorSpec("w", new long[] {2, 64}, Encoding.INT4, 32, 2, ActivationHint.F32);
        assertTrue(unknown.problem().contains("unknown layout id 2"), unknown.problem());
    }

    private static float[] ramp(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (i % 17 - 8) / 8f;
        }
        return v;
    }
}
