package io.bitplane.format.importer;

import io.bitplane.format.Encoding;
import io.bitplane.format.quant.QuantSpec;

/**
 * The ggml tensor types Bitplane imports, with their block geometry, the .bpm spec that holds each, and how near
 * that spec comes to the source ({@link Fidelity}). Block layouts (ggml-common.h): Q4_0 {f16 d; u8 qs[16]} per 32
 * values, Q4_1 {f16 d, m; u8 qs[16]}, Q8_0 {f16 d; i8 qs[32]}, TQ2_0 {u8 qs[64]; f16 d} per 256, TQ1_0 {u8 qs[48];
 * u8 qh[4]; f16 d} per 256; the k-quants, Q5_0/Q5_1 and IQ4_NL/IQ4_XS are drawn in {@link GgmlSubBlocks}.
 */
public enum GgmlType {
    F32(0, 1, 4, "f32", Fidelity.EXACT),
    F16(1, 1, 2, "f16", Fidelity.EXACT),
    Q4_0(2, 32, 18, "int4-rtn@32", Fidelity.EXACT),
    Q4_1(3, 32, 20, "int4-asym-rtn@32", Fidelity.EXACT),
    Q5_0(6, 32, 22, "int8@32", Fidelity.EXACT),
    Q5_1(7, 32, 24, "int8@32", Fidelity.REQUANTIZED),
    Q8_0(8, 32, 34, "int8@32", Fidelity.EXACT),
    Q2_K(10, 256, 84, "int4-asym-rtn@16", Fidelity.F16_SCALES),
    Q3_K(11, 256, 110, "int4-rtn@16", Fidelity.F16_SCALES),
    Q4_K(12, 256, 144, "int4-asym-rtn@32", Fidelity.F16_SCALES),
    Q5_K(13, 256, 176, "int8@32", Fidelity.REQUANTIZED),
    Q6_K(14, 256, 210, "int8@16", Fidelity.F16_SCALES),
    IQ4_NL(20, 32, 18, "int8@32", Fidelity.EXACT),
    IQ4_XS(23, 256, 136, "int8@32", Fidelity.F16_SCALES),
    BF16(30, 1, 2, "bf16", Fidelity.EXACT),
    TQ1_0(34, 256, 54, "ternary@256", Fidelity.EXACT),
    TQ2_0(35, 256, 66, "ternary@256", Fidelity.EXACT);

    /** How the .bpm spec holds a type's values. */
    public enum Fidelity {
        /** Every value bit for bit: the codes move, the f16 scales (and mins) are the block's own. */
        EXACT("lossless"),
        /**
         * The codes exactly (IQ4_XS's: the values of its 16-entry grid, which are int8); each group's scale and min,
         * which ggml computes in f32 as the block's f16 scale times a 4-, 6- or 8-bit sub-scale, rounded to f16
         * (within 2^-11 of themselves).
         */
        F16_SCALES("ggml codes, group scales rounded to f16"),
        /** No .bpm encoding has the type's 5-bit asymmetric codes: ggml's values are rounded to INT8 groups. */
        REQUANTIZED("ggml values rounded to int8");

        /** What the conversion records as the tensor's quantizer when it keeps the type's own spec. */
        public final String description;

        Fidelity(String description) {
            this.description = description;
        }
    }

    public final int id;
    public final int blockSize;
    public final int blockBytes;
    public final QuantSpec bpmSpec;
    public final Fidelity fidelity;

    GgmlType(int id, int blockSize, int blockBytes, String bpmSpec, Fidelity fidelity) {
        this.id = id;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
        this.bpmSpec = QuantSpec.parse(bpmSpec);
        this.fidelity = fidelity;
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

    /** The supported types' names, for error messages: "F32, F16, ...". */
    public static String supported() {
        StringBuilder s = new StringBuilder();
        for (GgmlType t : values()) {
            s.append(s.isEmpty() ? "" : ", ").append(t.name());
        }
        return s.toString();
    }
}
