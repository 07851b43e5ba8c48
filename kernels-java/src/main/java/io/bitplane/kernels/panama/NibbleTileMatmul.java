package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.ScalarMatmul;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * INT4 and INT4_ASYM x INT8 activations (W4A8), and TERNARY in groups shorter than a row, on tiles of rows whose 16-bit
 * lanes hold four 4-bit fields each, for machines without vpermw (AVX2), where {@link Int4TileMatmul}'s and {@link
 * SignTileMatmul}'s lookups would be emulated. Ternary fields (code + 1) take 4 bits here, twice their size in the
 * file, because the row-major {@link PackedTernaryMatmul} pays a horizontal sum per group and row: 4096 x 14336, 2
 * threads, -XX:UseAVX=2, ternary@128 15-16 G weights/s there, @256 24; one scale per row stays there. A row per lane
 * means no sums across lanes: a group's sum and scale are formed for a whole tile of rows at once, where the row-major
 * kernel that served INT4 before paid a horizontal sum per group and row (4096 x 4096, one thread, -XX:UseAVX=2, G
 * products/s: groups of 32 17.4 there, 20.8 here; groups of 128 12 against 28). Fields are not masked (below), and
 * tiles go in threes that share each broadcast code (pairs: 4096 x 14336 INT4, -XX:UseAVX=2, one thread from L3 21 ->
 * 30.6 G weights/s, two from DRAM 38.8 -> 53.7; threes: {@link #TILES_PER_PASS}).
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack} from either file layout); R = TileRows.ROWS rows per tile,
 * Q = 4 ceil(K / 16) quads per row:
 *   at ((t Q + p) R + r) * 2 bytes: u16, bits 4i .. 4i+3 = field u of value 4p + i of row R t + r (u = code + 8
 *   for INT4, the code for INT4_ASYM, code + 1 for TERNARY). Rows past N and values past K are 0.
 * Scales (and INT4_ASYM mins): f32 in TileRows' order (even rows, then odd rows).
 * Codes: per token, int16, a token every 16 ceil(K / 16) codes, as D (see {@link #codes}).
 * Fields unmasked: with v a lane and v_i = v >>> 4i (its fields i .. 3), field i is u_i = v_i - 16 v_(i+1), so
 *   sum_i u_i q_i = sum_i v_i D_i with D_i = q_i - 16 q_(i-1) (D_0 = q_0): a shift, a multiply and an add per
 *   field instead of a shift, a mask, a multiply and an add. Products wrap in int16, but the identity holds modulo
 *   2^16, and a step's 16 products (four quads) sum exactly to at most 16 x 15 x 127 = 30480 per lane. (The shifts
 *   are of int lanes, each followed by a mask that clears only what they bring down from the neighbouring 16-bit
 *   lane: see LOW_12_BITS.)
 * Per tile, token and group, lane by lane: each step's int16 sum (three add chains, one per tile of the pass), then
 *   into int32 sums (even and odd rows): F_g = sum u q, exact.
 *   acc_g = F_g - 8 X_g (INT4), F_g - X_g (TERNARY) or F_g (INT4_ASYM), X_g the group's sum of codes; as the
 *   oracle, in group order, sum = sum + (s_g acc_g + 0f), or + (s_g acc_g + m_g X_g) for INT4_ASYM; y = sum x s_x.
 * </pre>
 * Groups must hold a multiple of 8 values (a group may end inside a step) or be one per row.
 */
final class NibbleTileMatmul {
    private NibbleTileMatmul() {
    }

    private static final int R = TileRows.ROWS;
    private static final VectorSpecies<Short> S = TileRows.S;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, S.vectorShape());
    /** Values per step: 16 products of at most 15 x 127 per lane, whose exact sum (30480) fits an int16. */
    private static final int STEP_VALUES = 16;
    /**
     * A lane's fields shifted down by 4, 8 and 12 bits are shifted as int lanes and masked back to 16-bit lanes:
     * C2 compiles a 16-bit shift by a constant with its count in a register (vmovd, then vpsrlw by xmm), a 32-bit
     * one with an immediate. -XX:UseAVX=2, JMH 4096x14336 INT4@32 from the L3: one thread 435-440 -> 467-469
     * calls/s, two 822-849 -> 861-888; level on AVX-512 (1,138-1,147 against 1,123-1,141).
     */
    private static final int LOW_12_BITS = 0x0FFF0FFF;
    private static final int LOW_8_BITS = 0x00FF00FF;
    private static final int LOW_4_BITS = 0x000F000F;
    /** Quads per step: four values of a row per 16-bit lane. */
    private static final int QUADS = STEP_VALUES / 4;
    /** Bytes of one quad of a tile: R lanes of four fields. */
    private static final int QUAD_BYTES = 2 * R;
    private static final int STEP_BYTES = QUADS * QUAD_BYTES;
    /** Groups shorter than a row hold whole pairs of quads (a group may end inside a step; its sums widen there). */
    private static final int GROUP_MULTIPLE = 8;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    /**
     * INT4, INT4_ASYM, and TERNARY in groups shorter than a row (either layout), with INT8 activations in groups of
     * whole steps (tiles as wide as the preferred vectors). At 128 bits also BINARY, fields code + 1 (0 or 2, four
     * times the file's bits), which wider vectors look up in tables of their own ({@link ByteTableMatmul}, {@link
     * SignTileMatmul}).
     */
    static boolean supports(TensorSpec spec) {
        Encoding e = spec.encoding();
        boolean int4 = e == Encoding.INT4 || e == Encoding.INT4_ASYM;
        boolean groupedTernary = e == Encoding.TERNARY && spec.groupsPerRow() > 1;
        boolean narrowBinary = e == Encoding.BINARY && S.vectorBitSize() == 128;
        return (int4 || groupedTernary || narrowBinary) && spec.activations() == ActivationHint.INT8
                && (spec.layout() == TensorSpec.LAYOUT_CANONICAL || spec.layout() == TensorSpec.LAYOUT_PACKED)
                && spec.rank() == 2
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % GROUP_MULTIPLE == 0)
                && spec.cols() <= Integer.MAX_VALUE / 16;
    }

    static int steps(TensorSpec spec) {
        return (int) ((spec.cols() + STEP_VALUES - 1) / STEP_VALUES);
    }

    /** Codes per token: K rounded up to whole steps. */
    static int paddedK(TensorSpec spec) {
        return steps(spec) * STEP_VALUES;
    }

    /** Tiles, and scales and mins (INT4_ASYM; else null) in tile order, in native memory from {@code memory}. */
    record Tiles(MemorySegment fields, MemorySegment scales, MemorySegment mins) {
    }

    /** One pass over the tensor, its rows split over {@code pool}. */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        long tiles = TileRows.tiles(spec);
        long groupSlots = tiles * spec.groupsPerRow() * R * 4;
        Tiles t = new Tiles(memory.allocate(tiles * steps(spec) * STEP_BYTES),
                memory.allocate(groupSlots),
                spec.encoding() == Encoding.INT4_ASYM ? memory.allocate(groupSlots) : null);
        pool.run((int) spec.rows(), (r0, r1) -> repackRows(spec, data, t, r0, r1));
        return t;
    }

    private static void repackRows(TensorSpec spec, MemorySegment data, Tiles t, int r0, int r1) {
        int k = (int) spec.cols();
        int quads = QUADS * steps(spec);
        int groups = (int) spec.groupsPerRow();
        long scalesOffset = spec.scalesOffset();  // once: each call walks the tensor's shape
        long minsOffset = t.mins() != null ? spec.minsOffset() : 0;
        int fieldOfCodeZero = -PackedCodes.codeOfField(spec.encoding(), 0);
        int[] u = new int[4 * quads];  // zero past K
        for (int r = r0; r < r1; r++) {
            ScalarMatmul.decodeRow(spec, data, r, k, u);  // codes, from either layout
            for (int i = 0; i < k; i++) {
                u[i] += fieldOfCodeZero;
            }
            long at = ((long) (r / R) * quads * R + r % R) * 2;
            for (int q = 0; q < quads; q++, at += QUAD_BYTES) {
                int lane = u[4 * q] | u[4 * q + 1] << 4 | u[4 * q + 2] << 8 | u[4 * q + 3] << 12;
                t.fields().set(U16, at, (short) lane);
            }
            TileRows.putF32(data, scalesOffset, groups, r, t.scales());
            if (t.mins() != null) {
                TileRows.putF32(data, minsOffset, groups, r, t.mins());
            }
        }
    }

    /**
     * One token's codes {@code q[q0 .. q0 + K)} into {@code codes[c0 .. c0 + paddedK)} as the kernel multiplies them:
     * per quad, D_0 = q_0 and D_j = q_j - 16 q_(j-1) (j = 1 .. 3; zero past K).
     */
    static void codes(TensorSpec spec, short[] q, int q0, short[] codes, int c0) {
        int k = (int) spec.cols();
        int below = 0;  // q_(j-1), 0 for a quad's first value
        for (int i = 0; i < paddedK(spec); i++) {
            int code = i < k ? q[q0 + i] : 0;
            codes[c0 + i] = (short) (code - (i % 4 == 0 ? 0 : 16 * below));
            below = code;
        }
    }

    /**
     * Tiles a pass over a token's codes, each its own stream of weights: pairs to threes, 4096 x 14336 INT4 x INT8,
     * two threads (`bitplane bench`, alternated, on the Intel Xeon), G weights/s: 33.1-34.3 -> 34.0-36.4, AVX2 code
     * 27.8-30.7 -> 31.6-33.3, 128-bit vectors 17.8-18.6 -> 22.2-24.3 (and binary there 16.3-17.3 -> 19.0-19.8).
     * Four a pass ran at 6 G weights/s: C2 kept vectors as objects (339 collections in a run against 51).
     */
    private static final int TILES_PER_PASS = 3;

    /** Per worker thread: a pass's tiles' results, each even rows then odd rows. */
    private static final ThreadLocal<float[]> TILE_RESULTS =
            ThreadLocal.withInitial(() -> new float[TILES_PER_PASS * R]);

    /**
     * Tiles [tile0, tile1) for every token: token t's codes at {@code codes[t * paddedK ..]} ({@link #codes}), its
     * group sums of codes at {@code codeSums[t * G ..]}, its scale at {@code tokenScales[t]}; results at
     * {@code y[t * N + row]}. Tiles go three at a time (A to C; a last pass's missing ones read its first tile
     * again, their results dropped): each broadcast code serves all three, and a thread reads three streams.
     */
    static void tiles(TensorSpec spec, Tiles w, short[] codes, int[] codeSums, float[] tokenScales, float[] y,
                      int batch, int tile0, int tile1) {
        int n = (int) spec.rows();
        int steps = steps(spec);
        int paddedK = paddedK(spec);
        int groups = (int) spec.groupsPerRow();
        int quads = QUADS * steps;
        int groupQuads = groups == 1 ? quads : (int) spec.effectiveGroupSize() / 4;
        boolean asym = w.mins() != null;
        int codeFactor = PackedCodes.codeOfField(spec.encoding(), 0);  // acc = F + (code of field 0) X
        int half = R / 2;
        long tileBytes = (long) steps * STEP_BYTES;
        long scaleBytes = (long) groups * R * 4;
        float[] out = TILE_RESULTS.get();
        for (int tile = tile0; tile < tile1; tile += TILES_PER_PASS) {
            int count = Math.min(TILES_PER_PASS, tile1 - tile);
            long baseA = tile * tileBytes;
            long baseB = count > 1 ? baseA + tileBytes : baseA;
            long baseC = count > 2 ? baseA + 2 * tileBytes : baseA;
            for (int t = 0; t < batch; t++) {
                int qo = t * paddedK;
                FloatVector evenA = FloatVector.zero(F);
                FloatVector oddA = FloatVector.zero(F);
                FloatVector evenB = FloatVector.zero(F);
                FloatVector oddB = FloatVector.zero(F);
                FloatVector evenC = FloatVector.zero(F);
                FloatVector oddC = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    IntVector evenSumA = IntVector.zero(I);
                    IntVector oddSumA = IntVector.zero(I);
                    IntVector evenSumB = IntVector.zero(I);
                    IntVector oddSumB = IntVector.zero(I);
                    IntVector evenSumC = IntVector.zero(I);
                    IntVector oddSumC = IntVector.zero(I);
                    ShortVector sumA = ShortVector.zero(S);
                    ShortVector sumB = sumA;
                    ShortVector sumC = sumA;
                    int end = Math.min(quads, (g + 1) * groupQuads);
                    // One loop over the group's quads, the sums widened inside it at each step's last quad and the
                    // group's: a loop of four quads inside a loop of steps ran 20% slower than the code before it.
                    for (int quad = g * groupQuads; quad < end; quad++) {
                        // Per field j: the lane shifted by 4j, unmasked, times D_j (see codes); the fields above j
                        // cancel in the step's sum, which is exact in int16. Written out tile by tile: a helper
                        // that took vectors and was not inlined would box them.
                        long at = (long) quad * QUAD_BYTES;
                        int i = qo + 4 * quad;
                        ShortVector vA = ShortVector.fromMemorySegment(S, w.fields(), baseA + at, LE);
                        ShortVector vB = ShortVector.fromMemorySegment(S, w.fields(), baseB + at, LE);
                        ShortVector vC = ShortVector.fromMemorySegment(S, w.fields(), baseC + at, LE);
                        IntVector iA = vA.reinterpretAsInts();
                        IntVector iB = vB.reinterpretAsInts();
                        IntVector iC = vC.reinterpretAsInts();
                        ShortVector code = ShortVector.broadcast(S, codes[i]);
                        sumA = sumA.add(vA.mul(code));
                        sumB = sumB.add(vB.mul(code));
                        sumC = sumC.add(vC.mul(code));
                        code = ShortVector.broadcast(S, codes[i + 1]);
                        sumA = sumA.add(iA.lanewise(VectorOperators.LSHR, 4).and(LOW_12_BITS)
                                .reinterpretAsShorts().mul(code));
                        sumB = sumB.add(iB.lanewise(VectorOperators.LSHR, 4).and(LOW_12_BITS)
                                .reinterpretAsShorts().mul(code));
                        sumC = sumC.add(iC.lanewise(VectorOperators.LSHR, 4).and(LOW_12_BITS)
                                .reinterpretAsShorts().mul(code));
                        code = ShortVector.broadcast(S, codes[i + 2]);
                        sumA = sumA.add(iA.lanewise(VectorOperators.LSHR, 8).and(LOW_8_BITS)
                                .reinterpretAsShorts().mul(code));
                        sumB = sumB.add(iB.lanewise(VectorOperators.LSHR, 8).and(LOW_8_BITS)
                                .reinterpretAsShorts().mul(code));
                        sumC = sumC.add(iC.lanewise(VectorOperators.LSHR, 8).and(LOW_8_BITS)
                                .reinterpretAsShorts().mul(code));
                        code = ShortVector.broadcast(S, codes[i + 3]);
                        sumA = sumA.add(iA.lanewise(VectorOperators.LSHR, 12).and(LOW_4_BITS)
                                .reinterpretAsShorts().mul(code));
                        sumB = sumB.add(iB.lanewise(VectorOperators.LSHR, 12).and(LOW_4_BITS)
                                .reinterpretAsShorts().mul(code));
                        sumC = sumC.add(iC.lanewise(VectorOperators.LSHR, 12).and(LOW_4_BITS)
                                .reinterpretAsShorts().mul(code));
                        if ((quad & (QUADS - 1)) == QUADS - 1 || quad == end - 1) {  // quad % QUADS, unsigned
                            // A pair of 16-bit lanes read as one int: the even row (v << 16) >> 16, the odd row
                            // v >> 16.
                            IntVector wideA = sumA.reinterpretAsInts();
                            evenSumA = evenSumA.add(wideA.lanewise(VectorOperators.LSHL, 16)
                                    .lanewise(VectorOperators.ASHR, 16));
                            oddSumA = oddSumA.add(wideA.lanewise(VectorOperators.ASHR, 16));
                            IntVector wideB = sumB.reinterpretAsInts();
                            evenSumB = evenSumB.add(wideB.lanewise(VectorOperators.LSHL, 16)
                                    .lanewise(VectorOperators.ASHR, 16));
                            oddSumB = oddSumB.add(wideB.lanewise(VectorOperators.ASHR, 16));
                            IntVector wideC = sumC.reinterpretAsInts();
                            evenSumC = evenSumC.add(wideC.lanewise(VectorOperators.LSHL, 16)
                                    .lanewise(VectorOperators.ASHR, 16));
                            oddSumC = oddSumC.add(wideC.lanewise(VectorOperators.ASHR, 16));
                            sumA = ShortVector.zero(S);
                            sumB = sumA;
                            sumC = sumA;
                        }
                    }
                    int x = codeSums[t * groups + g];
                    long atA = ((long) tile * groups + g) * R * 4;
                    long atB = count > 1 ? atA + scaleBytes : atA;
                    long atC = count > 2 ? atA + 2 * scaleBytes : atA;
                    // Written out, not a helper: a helper that took vectors and was not inlined would box them.
                    FloatVector evenTermA = FloatVector.fromMemorySegment(F, w.scales(), atA, LE)
                            .mul((FloatVector) evenSumA.add(codeFactor * x).convert(VectorOperators.I2F, 0));
                    FloatVector oddTermA = FloatVector.fromMemorySegment(F, w.scales(), atA + 4L * half, LE)
                            .mul((FloatVector) oddSumA.add(codeFactor * x).convert(VectorOperators.I2F, 0));
                    FloatVector evenTermB = FloatVector.fromMemorySegment(F, w.scales(), atB, LE)
                            .mul((FloatVector) evenSumB.add(codeFactor * x).convert(VectorOperators.I2F, 0));
                    FloatVector oddTermB = FloatVector.fromMemorySegment(F, w.scales(), atB + 4L * half, LE)
                            .mul((FloatVector) oddSumB.add(codeFactor * x).convert(VectorOperators.I2F, 0));
                    FloatVector evenTermC = FloatVector.fromMemorySegment(F, w.scales(), atC, LE)
                            .mul((FloatVector) evenSumC.add(codeFactor * x).convert(VectorOperators.I2F, 0));
                    FloatVector oddTermC = FloatVector.fromMemorySegment(F, w.scales(), atC + 4L * half, LE)
                            .mul((FloatVector) oddSumC.add(codeFactor * x).convert(VectorOperators.I2F, 0));
                    if (asym) {
                        evenTermA = evenTermA.add(FloatVector.fromMemorySegment(F, w.mins(), atA, LE)
                                .mul((float) x));
                        oddTermA = oddTermA.add(FloatVector.fromMemorySegment(F, w.mins(), atA + 4L * half, LE)
                                .mul((float) x));
                        evenTermB = evenTermB.add(FloatVector.fromMemorySegment(F, w.mins(), atB, LE)
                                .mul((float) x));
                        oddTermB = oddTermB.add(FloatVector.fromMemorySegment(F, w.mins(), atB + 4L * half, LE)
                                .mul((float) x));
                        evenTermC = evenTermC.add(FloatVector.fromMemorySegment(F, w.mins(), atC, LE)
                                .mul((float) x));
                        oddTermC = oddTermC.add(FloatVector.fromMemorySegment(F, w.mins(), atC + 4L * half, LE)
                                .mul((float) x));
                    } else {
                        evenTermA = evenTermA.add(0f);
                        oddTermA = oddTermA.add(0f);
                        evenTermB = evenTermB.add(0f);
                        oddTermB = oddTermB.add(0f);
                        evenTermC = evenTermC.add(0f);
                        oddTermC = oddTermC.add(0f);
                    }
                    evenA = evenA.add(evenTermA);
                    oddA = oddA.add(oddTermA);
                    evenB = evenB.add(evenTermB);
                    oddB = oddB.add(oddTermB);
                    evenC = evenC.add(evenTermC);
                    oddC = oddC.add(oddTermC);
                }
                float tokenScale = tokenScales[t];  // y = sum x s_x, as the oracle
                evenA.mul(tokenScale).intoArray(out, 0);
                oddA.mul(tokenScale).intoArray(out, half);
                evenB.mul(tokenScale).intoArray(out, R);
                oddB.mul(tokenScale).intoArray(out, R + half);
                evenC.mul(tokenScale).intoArray(out, 2 * R);
                oddC.mul(tokenScale).intoArray(out, 2 * R + half);
                for (int u = 0; u < count; u++) {
                    TileRows.store(out, u * R, y, t * n, (tile + u) * R, n);
                }
            }
        }
    }
}
