package io.bitplane.format.importer;

import io.bitplane.format.Encoding;
import io.bitplane.format.quant.QuantSpec;

/**
 * The ggml tensor types Bitplane imports, with their block geometry and the .bpm spec that holds each without loss.
 * Block layouts (ggml-common.h): Q4_0 {f16 d; u8 qs[16]} per 32 values, Q4_1 {f16 d, m; u8 qs[16]},
 * Q8_0 {f16 d; i8 qs[32]}, TQ2_0 {u8 qs[64]; f16 d} per 256, TQ1_0 {u8 qs[48]; u8 qh[4]; f16 d} per 256.
 */
public enum GgmlType {
    F32(0, 1, 4, "f32"),
    F16(1, 1, 2, "f16"),
    Q4_0(2, 32, 18, "int4-rtn@32"),
    Q4_1(3, 32, 20, "int4-asym-rtn@32"),
    Q8_0(8, 32, 34, "int8@32"),
    BF16(30, 1, 2, "bf16"),
    TQ1_0(34, 256, 54, "ternary@256"),
    TQ2_0(35, 256, 66, "ternary@256");

    public final int id;
    public final int blockSize;
    public final int blockBytes;
    public final QuantSpec bpmSpec;

    GgmlType(int id, int blockSize, int blockBytes, String bpmSpec) {
        this.id = id;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
        this.bpmSpec = QuantSpec.parse(bpmSpec);
    }

    public Encoding encoding() {
        return bpmSpec.encoding();
    }

    public static GgmlType ofId(int id) {
        for (GgmlType t : values()) {
            if (t.id == id) {
                return t;
            }
        }
        return null;
    }
}
