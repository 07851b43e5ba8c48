package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.ScalarMatmul;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * INT4 and INT4_ASYM x F32 activations (llama.cpp's Q4_0 and Q4_1 imports, say) on tiles of rows, one row per 32-bit
 * lane and eight 4-bit codes a lane, for 128-bit vectors (NEON's width), where neither the AVX-512 lookup tiles
 * ({@link Int4TileMatmul}) nor the AVX2 float tables ({@link TripleTableMatmul}) can run and the row-expanding kernel
 * read 2-4 G weights/s (at that width it takes TERNARY and BINARY x F32 too, their codes as 4-bit codes: see
 * {@link #supports}). {@link Int8FloatTileMatmul}'s method with nibbles: each code is shifted to the top of its
 * lane and back down (sign-extended), converted and multiplied by the broadcast activation, a tile of rows at once.
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack}); R = rows per tile = the int lanes of a vector (4 at 128
 *   bits), O = ceil(K / 8) octets per row:
 *   at ((t O + o) R + r) * 4 bytes: u32, bits 4i .. 4i+3 = a 4-bit two's complement number for value 8 o + i of
 *   row R t + r: u - 8 for INT4 and INT4_ASYM (u the field, 0 .. 15; INT4's code, INT4_ASYM's code minus 8), the
 *   code for TERNARY and BINARY. Rows past N and values past K are 0.
 * Scales (and INT4_ASYM mins): f32, at ((t G + g) R + r) * 4.
 * Per tile, token and group, lane by lane: field i of a lane is (v << 28 - 4i) >> 28, times x in two float sums
 *   (even and odd fields: two FMA chains); acc_g = that sum, + 8 X_g for INT4_ASYM (X_g the group's sum of x);
 *   y = sum_g (s_g acc_g [+ m_g X_g]) in group order. Float sums in another order than the reference's: equal
 *   within rounding.
 * </pre>
 * Groups must hold whole octets (a multiple of 8 values) or be one per row. The fields are taken apart in place,
 * not in a helper: C2 stopped inlining a helper this method calls sixteen times (NodeCountInliningCutoff), and the
 * vectors passed to it were boxed (2.8 G weights/s at 4096x4096, 128 bits).
 */
final class NibbleFloatTileMatmul {
    private NibbleFloatTileMatmul() {
    }

    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED.vectorBitSize() >= 256
            ? IntVector.SPECIES_256 : IntVector.SPECIES_128;
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, I.vectorShape());
    /** Rows per tile: one per 32-bit lane. */
    static final int ROWS = I.length();
    private static final int OCTET_BYTES = 4 * ROWS;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);

    /**
     * INT4 and INT4_ASYM (either layout) with F32 activations in groups of whole octets; at 128 bits also TERNARY and
     * BINARY, whose codes (-1, 0, +1) are 4-bit codes too, in tiles twice and four times their size in the file:
     * where vectors are wider their own tiles serve them.
     */
    static boolean supports(TensorSpec spec) {
        Encoding e = spec.encoding();
        boolean signCodes = (e == Encoding.TERNARY || e == Encoding.BINARY) && I.vectorBitSize() == 128;
        return (e == Encoding.INT4 || e == Encoding.INT4_ASYM || signCodes) && spec.activations() == ActivationHint.F32
                && spec.rank() == 2
                && (spec.layout() == TensorSpec.LAYOUT_CANONICAL || spec.layout() == TensorSpec.LAYOUT_PACKED)
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % 8 == 0)
                && spec.cols() <= Integer.MAX_VALUE / 8;
    }

    static int octets(TensorSpec spec) {
        return (int) ((spec.cols() + 7) / 8);
    }

    static int tiles(TensorSpec spec) {
        return (int) ((spec.rows() + ROWS - 1) / ROWS);
    }

    /** Tiles, and scales and mins (INT4_ASYM; else null) in tile order, in native memory from {@code memory}. */
    record Tiles(MemorySegment codes, MemorySegment scales, MemorySegment mins) {
    }

    /** One pass over the tensor, its rows split over {@code pool}. */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        long slots = (long) tiles(spec) * spec.groupsPerRow() * ROWS * 4;
        Tiles tiles = new Tiles(memory.allocate((long) tiles(spec) * octets(spec) * OCTET_BYTES),
                memory.allocate(slots),
                spec.encoding() == Encoding.INT4_ASYM ? memory.allocate(slots) : null);
        pool.run((int) spec.rows(), (r0, r1) -> repackRows(spec, data, tiles, r0, r1));
        return tiles;
    }

    private static void repackRows(TensorSpec spec, MemorySegment data, Tiles tiles, int r0, int r1) {
        int k = (int) spec.cols();
        int octets = octets(spec);
        int groups = (int) spec.groupsPerRow();
        long scalesOffset = spec.scalesOffset();  // once: each call walks the tensor's shape
        long minsOffset = tiles.mins() != null ? spec.minsOffset() : 0;
        int offset = tiles.mins() != null ? 8 : 0;  // INT4_ASYM's codes u are stored as u - 8
        int[] codes = new int[8 * octets];  // zero past K
        for (int r = r0; r < r1; r++) {
            ScalarMatmul.decodeRow(spec, data, r, k, codes);  // codes, from either layout
            long at = ((long) (r / ROWS) * octets * ROWS + r % ROWS) * 4;
            for (int o = 0; o < octets; o++, at += OCTET_BYTES) {
                int lane = 0;
                for (int i = 0; i < 8 && 8 * o + i < k; i++) {
                    lane |= (codes[8 * o + i] - offset & 15) << 4 * i;
                }
                tiles.codes().set(U32, at, lane);
            }
            TileRows.putF32InRowOrder(data, scalesOffset, groups, r, ROWS, tiles.scales());
            if (tiles.mins() != null) {
                TileRows.putF32InRowOrder(data, minsOffset, groups, r, ROWS, tiles.mins());
            }
        }
    }

    /** Per worker thread: a pair of tiles' results, rows in order. */
    private static final ThreadLocal<float[]> TILE_RESULTS = ThreadLocal.withInitial(() -> new float[2 * ROWS]);

    /**
     * Tiles [tile0, tile1) for every token: token t's activations at {@code x[t * K ..]}, and for INT4_ASYM its group
     * sums at {@code xSums[t * G ..]} (else null); results at {@code y[t * N + row]}. Tiles go in pairs (A and B; a
     * last single tile is its own B): each broadcast activation serves both.
     */
    static void tiles(TensorSpec spec, Tiles w, float[] x, float[] xSums, float[] y, int batch, int tile0,
                      int tile1) {
        int n = (int) spec.rows();
        int k = (int) spec.cols();
        int octets = octets(spec);
        int groups = (int) spec.groupsPerRow();
        int groupOctets = groups == 1 ? octets : (int) spec.effectiveGroupSize() / 8;
        boolean asym = w.mins() != null;
        long tileBytes = (long) octets * OCTET_BYTES;
        float[] out = TILE_RESULTS.get();
        for (int tile = tile0; tile < tile1; tile += 2) {
            int pair = Math.min(2, tile1 - tile);
            long baseA = tile * tileBytes;
            long baseB = pair == 2 ? baseA + tileBytes : baseA;
            for (int t = 0; t < batch; t++) {
                int x0 = t * k;
                FloatVector yA = FloatVector.zero(F);
                FloatVector yB = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    FloatVector a0 = FloatVector.zero(F);
                    FloatVector a1 = FloatVector.zero(F);
                    FloatVector b0 = FloatVector.zero(F);
                    FloatVector b1 = FloatVector.zero(F);
                    int end = Math.min(octets, (g + 1) * groupOctets);
                    int full = Math.min(end, k / 8);  // octets whose eight values are all below K
                    int o = g * groupOctets;
                    for (; o < full; o++) {
                        long at = (long) o * OCTET_BYTES;
                        IntVector va = IntVector.fromMemorySegment(I, w.codes(), baseA + at, LE);
                        IntVector vb = IntVector.fromMemorySegment(I, w.codes(), baseB + at, LE);
                        int i = x0 + 8 * o;
                        FloatVector xv = FloatVector.broadcast(F, x[i]);
                        a0 = ((FloatVector) va.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, a0);
                        b0 = ((FloatVector) vb.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, b0);
                        xv = FloatVector.broadcast(F, x[i + 1]);
                        a1 = ((FloatVector) va.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, a1);
                        b1 = ((FloatVector) vb.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, b1);
                        xv = FloatVector.broadcast(F, x[i + 2]);
                        a0 = ((FloatVector) va.lanewise(VectorOperators.LSHL, 20).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, a0);
                        b0 = ((FloatVector) vb.lanewise(VectorOperators.LSHL, 20).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, b0);
                        xv = FloatVector.broadcast(F, x[i + 3]);
                        a1 = ((FloatVector) va.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, a1);
                        b1 = ((FloatVector) vb.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, b1);
                        xv = FloatVector.broadcast(F, x[i + 4]);
                        a0 = ((FloatVector) va.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, a0);
                        b0 = ((FloatVector) vb.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, b0);
                        xv = FloatVector.broadcast(F, x[i + 5]);
                        a1 = ((FloatVector) va.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, a1);
                        b1 = ((FloatVector) vb.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, b1);
                        xv = FloatVector.broadcast(F, x[i + 6]);
                        a0 = ((FloatVector) va.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, a0);
                        b0 = ((FloatVector) vb.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 28)
                                .convert(VectorOperators.I2F, 0)).fma(xv, b0);
                        xv = FloatVector.broadcast(F, x[i + 7]);
                        a1 = ((FloatVector) va.lanewise(VectorOperators.ASHR, 28).convert(VectorOperators.I2F, 0))
                                .fma(xv, a1);
                        b1 = ((FloatVector) vb.lanewise(VectorOperators.ASHR, 28).convert(VectorOperators.I2F, 0))
                                .fma(xv, b1);
                    }
                    for (; o < end; o++) {  // the last octet, cut by K: x past K is not read
                        long at = (long) o * OCTET_BYTES;
                        IntVector va = IntVector.fromMemorySegment(I, w.codes(), baseA + at, LE);
                        IntVector vb = IntVector.fromMemorySegment(I, w.codes(), baseB + at, LE);
                        for (int i = 0; 8 * o + i < k; i++) {
                            FloatVector xv = FloatVector.broadcast(F, x[x0 + 8 * o + i]);
                            int up = 28 - 4 * i;
                            a0 = ((FloatVector) va.lanewise(VectorOperators.LSHL, up).lanewise(VectorOperators.ASHR, 28)
                                    .convert(VectorOperators.I2F, 0)).fma(xv, a0);
                            b0 = ((FloatVector) vb.lanewise(VectorOperators.LSHL, up).lanewise(VectorOperators.ASHR, 28)
                                    .convert(VectorOperators.I2F, 0)).fma(xv, b0);
                        }
                    }
                    long atA = ((long) tile * groups + g) * ROWS * 4;
                    long atB = pair == 2 ? atA + (long) groups * ROWS * 4 : atA;
                    FloatVector accA = a0.add(a1);
                    FloatVector accB = b0.add(b1);
                    if (asym) {  // the stored fields are u - 8: acc = sum u x = that + 8 X_g; term + m_g X_g
                        float xg = xSums[t * groups + g];
                        accA = accA.add(8 * xg);
                        accB = accB.add(8 * xg);
                        yA = yA.add(FloatVector.fromMemorySegment(F, w.scales(), atA, LE).mul(accA)
                                .add(FloatVector.fromMemorySegment(F, w.mins(), atA, LE).mul(xg)));
                        yB = yB.add(FloatVector.fromMemorySegment(F, w.scales(), atB, LE).mul(accB)
                                .add(FloatVector.fromMemorySegment(F, w.mins(), atB, LE).mul(xg)));
                    } else {
                        yA = yA.add(FloatVector.fromMemorySegment(F, w.scales(), atA, LE).mul(accA));
                        yB = yB.add(FloatVector.fromMemorySegment(F, w.scales(), atB, LE).mul(accB));
                    }
                }
                yA.intoArray(out, 0);
                yB.intoArray(out, ROWS);
                TileRows.storeInOrder(out, pair * ROWS, y, t * n, tile * ROWS, n);
            }
        }
    }
}
