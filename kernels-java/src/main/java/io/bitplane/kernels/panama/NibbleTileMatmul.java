package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.ScalarMatmul;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * INT4 and INT4_ASYM x INT8 activations (W4A8), and TERNARY in groups shorter than a row, on tiles of rows whose
 * 16-bit lanes hold four 4-bit fields each, for machines without vpermw (AVX2), where {@link Int4TileMatmul}'s and
 * {@link SignTileMatmul}'s lookups would be emulated. Ternary fields (code + 1) take 4 bits here, twice their size
 * in the file, because the row-major {@link PackedTernaryMatmul} pays a horizontal sum per group and row: 4096 x
 * 14336, 2 threads, -XX:UseAVX=2, ternary@128 15-16 G weights/s there, @256 24; one scale per row stays there. A row per lane means no
 * sums across lanes: a group's sum and scale are formed for a whole tile of rows at once, where the
 * row-major kernel that served INT4 before paid a horizontal sum per group and row (4096 x 4096, one thread,
 * -XX:UseAVX=2, G products/s: groups of 32 17.4 there, 20.8 here; groups of 128 12 against 28). Tiles in pairs
 * (as {@link ByteTableMatmul} takes them) ran slower here: eight int16 sums and four weight vectors spill.
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack} from either file layout); R = TileRows.ROWS rows per tile,
 * Q = 2 ceil(K / 8) quads per row:
 *   at ((t Q + p) R + r) * 2 bytes: u16, bits 4i .. 4i+3 = field u of value 4p + i of row R t + r (u = code + 8
 *   for INT4, the code for INT4_ASYM, code + 1 for TERNARY). Rows past N and values past K are 0.
 * Scales (and INT4_ASYM mins): f32 in TileRows' order (even rows, then odd rows).
 * Codes: per token, int16, a token every 8 ceil(K / 8) codes (those past K meet only zero fields).
 * Per tile, token and group, lane by lane: field times the code (broadcast) in four int16 sums (one per field of
 *   the lane: four add chains side by side; two were 10-30% slower), two products per sum and step of two quads,
 *   at most 15 x 127 each, so runs of {@link #RUN} steps (64 values) end before 32767;
 *   then into int32 sums (even and odd rows): F_g = sum u q, exact.
 *   acc_g = F_g - 8 X_g (INT4), F_g - X_g (TERNARY) or F_g (INT4_ASYM), X_g the group's sum of codes; as the
 *   oracle, in group order, sum = sum + (s_g acc_g + 0f), or + (s_g acc_g + m_g X_g) for INT4_ASYM; y = sum x s_x.
 * </pre>
 * Groups must be whole steps (a multiple of 8 values) or one per row.
 */
final class NibbleTileMatmul {
    private NibbleTileMatmul() {
    }

    private static final int R = TileRows.ROWS;
    private static final VectorSpecies<Short> S = TileRows.S;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, S.vectorShape());
    private static final int STEP_VALUES = 8;
    /** Bytes of one quad of a tile: R lanes of four fields. */
    private static final int QUAD_BYTES = 2 * R;
    /** Steps per int16 run: two products of at most 15 x 127 per step in each sum. */
    private static final int RUN = 32767 / (2 * 15 * 127);
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    /**
     * INT4, INT4_ASYM, and TERNARY in groups shorter than a row (either layout), with INT8 activations in groups of
     * whole steps, on a machine with 256-bit vectors.
     */
    static boolean supports(TensorSpec spec) {
        Encoding e = spec.encoding();
        boolean int4 = e == Encoding.INT4 || e == Encoding.INT4_ASYM;
        boolean groupedTernary = e == Encoding.TERNARY && spec.groupsPerRow() > 1;
        return (int4 || groupedTernary) && spec.activations() == ActivationHint.INT8
                && (spec.layout() == TensorSpec.LAYOUT_CANONICAL || spec.layout() == TensorSpec.LAYOUT_PACKED)
                && spec.rank() == 2 && ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 256
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % STEP_VALUES == 0)
                && spec.cols() <= Integer.MAX_VALUE / 16;
    }

    static int steps(TensorSpec spec) {
        return (int) ((spec.cols() + STEP_VALUES - 1) / STEP_VALUES);
    }

    /** Codes per token: K rounded up to whole steps. */
    static int paddedK(TensorSpec spec) {
        return steps(spec) * STEP_VALUES;
    }

    /** Tiles, and scales and mins (INT4_ASYM; else null) in tile order, in native memory freed when unreachable. */
    record Tiles(MemorySegment fields, MemorySegment scales, MemorySegment mins) {
    }

    /** One pass over the tensor, its rows split over {@code pool}. */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool) {
        Arena arena = Arena.ofAuto();
        long tiles = TileRows.tiles(spec);
        long groupSlots = tiles * spec.groupsPerRow() * R * 4;
        Tiles t = new Tiles(arena.allocate(tiles * 2L * steps(spec) * QUAD_BYTES, 64), arena.allocate(groupSlots, 64),
                spec.encoding() == Encoding.INT4_ASYM ? arena.allocate(groupSlots, 64) : null);
        pool.run((int) spec.rows(), (r0, r1) -> repackRows(spec, data, t, r0, r1));
        return t;
    }

    private static void repackRows(TensorSpec spec, MemorySegment data, Tiles t, int r0, int r1) {
        int k = (int) spec.cols();
        int quads = 2 * steps(spec);
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
     * One token's codes {@code q[q0 .. q0 + K)} into {@code codes[c0 ..]}, a token every {@link #paddedK} codes. The
     * codes from K on are left as they were: they meet only the tiles' zero fields.
     */
    static void codes(TensorSpec spec, short[] q, int q0, short[] codes, int c0) {
        System.arraycopy(q, q0, codes, c0, (int) spec.cols());
    }

    /** Per worker thread: a tile's results, even rows then odd rows. */
    private static final ThreadLocal<float[]> TILE_RESULTS = ThreadLocal.withInitial(() -> new float[R]);

    /**
     * Tiles [tile0, tile1) for every token: token t's codes at {@code codes[t * paddedK ..]} ({@link #codes}), its
     * group sums of codes at {@code codeSums[t * G ..]}, its scale at {@code tokenScales[t]}; results at
     * {@code y[t * N + row]}.
     */
    static void tiles(TensorSpec spec, Tiles w, short[] codes, int[] codeSums, float[] tokenScales, float[] y,
                      int batch, int tile0, int tile1) {
        int n = (int) spec.rows();
        int steps = steps(spec);
        int paddedK = paddedK(spec);
        int groups = (int) spec.groupsPerRow();
        int groupSteps = groups == 1 ? steps : (int) spec.effectiveGroupSize() / STEP_VALUES;
        boolean asym = w.mins() != null;
        int codeFactor = PackedCodes.codeOfField(spec.encoding(), 0);  // acc = F + (code of field 0) X
        int half = R / 2;
        float[] out = TILE_RESULTS.get();
        for (int tile = tile0; tile < tile1; tile++) {
            long tileBase = (long) tile * 2 * steps * QUAD_BYTES;
            for (int t = 0; t < batch; t++) {
                int qo = t * paddedK;
                FloatVector even = FloatVector.zero(F);
                FloatVector odd = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    IntVector evenSum = IntVector.zero(I);
                    IntVector oddSum = IntVector.zero(I);
                    int end = Math.min(steps, (g + 1) * groupSteps);
                    for (int s0 = g * groupSteps; s0 < end; s0 += RUN) {
                        int s1 = Math.min(end, s0 + RUN);
                        ShortVector a = ShortVector.zero(S);
                        ShortVector b = ShortVector.zero(S);
                        ShortVector c = ShortVector.zero(S);
                        ShortVector d = ShortVector.zero(S);
                        for (int s = s0; s < s1; s++) {
                            long at = tileBase + 2L * s * QUAD_BYTES;
                            ShortVector v = ShortVector.fromMemorySegment(S, w.fields(), at, LE);
                            ShortVector u = ShortVector.fromMemorySegment(S, w.fields(), at + QUAD_BYTES, LE);
                            int i = qo + STEP_VALUES * s;
                            a = a.add(v.and((short) 15).mul(codes[i])).add(u.and((short) 15).mul(codes[i + 4]));
                            b = b.add(v.lanewise(VectorOperators.LSHR, 4).and((short) 15).mul(codes[i + 1]))
                                    .add(u.lanewise(VectorOperators.LSHR, 4).and((short) 15).mul(codes[i + 5]));
                            c = c.add(v.lanewise(VectorOperators.LSHR, 8).and((short) 15).mul(codes[i + 2]))
                                    .add(u.lanewise(VectorOperators.LSHR, 8).and((short) 15).mul(codes[i + 6]));
                            d = d.add(v.lanewise(VectorOperators.LSHR, 12).mul(codes[i + 3]))
                                    .add(u.lanewise(VectorOperators.LSHR, 12).mul(codes[i + 7]));
                        }
                        // A pair of 16-bit lanes read as one int: the even row (v << 16) >> 16, the odd row v >> 16.
                        IntVector ai = a.reinterpretAsInts();
                        IntVector bi = b.reinterpretAsInts();
                        IntVector ci = c.reinterpretAsInts();
                        IntVector di = d.reinterpretAsInts();
                        evenSum = evenSum.add(ai.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                                .add(bi.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                                .add(ci.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                                .add(di.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                        oddSum = oddSum.add(ai.lanewise(VectorOperators.ASHR, 16)).add(bi.lanewise(VectorOperators.ASHR, 16))
                                .add(ci.lanewise(VectorOperators.ASHR, 16)).add(di.lanewise(VectorOperators.ASHR, 16));
                    }
                    int x = codeSums[t * groups + g];
                    long at = ((long) tile * groups + g) * R * 4;
                    FloatVector evenAcc = (FloatVector) evenSum.add(codeFactor * x).convert(VectorOperators.I2F, 0);
                    FloatVector oddAcc = (FloatVector) oddSum.add(codeFactor * x).convert(VectorOperators.I2F, 0);
                    FloatVector evenTerm = FloatVector.fromMemorySegment(F, w.scales(), at, LE).mul(evenAcc);
                    FloatVector oddTerm = FloatVector.fromMemorySegment(F, w.scales(), at + 4L * half, LE).mul(oddAcc);
                    if (asym) {
                        evenTerm = evenTerm.add(FloatVector.fromMemorySegment(F, w.mins(), at, LE).mul((float) x));
                        oddTerm = oddTerm.add(FloatVector.fromMemorySegment(F, w.mins(), at + 4L * half, LE)
                                .mul((float) x));
                    } else {
                        evenTerm = evenTerm.add(0f);
                        oddTerm = oddTerm.add(0f);
                    }
                    even = even.add(evenTerm);
                    odd = odd.add(oddTerm);
                }
                even.mul(tokenScales[t]).intoArray(out, 0);  // y = sum x s_x, as the oracle
                odd.mul(tokenScales[t]).intoArray(out, half);
                TileRows.store(out, y, t * n, tile * R, n);
            }
        }
    }
}
