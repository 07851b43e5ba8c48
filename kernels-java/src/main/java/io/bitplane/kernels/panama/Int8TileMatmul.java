package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WorkerPool;
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
 * INT8 x INT8 activations (W8A8) on rows repacked into tiles, one row per 16-bit lane, so that each group's sum
 * and scale are formed for a whole tile of rows at once instead of being reduced across the lanes of one row.
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack}); R = rows per tile = the preferred vector's 16-bit lanes:
 *   tile t = rows R t .. R t + R - 1, pair p = values 2p, 2p + 1 (P = ceil(K / 2) pairs per row);
 *   at (t P + p) * 2R bytes: R u16 lanes, lane r = value 2p (low byte) and 2p + 1 (high byte) of row R t + r.
 *   Rows past N and values past K are 0.
 * Scales: f32, at ((t G + g) R + j) * 4 for group g: j < R/2 the even rows 2j of the tile, then the odd rows, the
 *   order in which 32-bit lanes hold the low and high halves of 16-bit lane pairs.
 * Per tile, token and group, lane by lane: the low byte times code q[2p] plus the high byte times q[2p + 1] in
 *   16 bits (at most 2 x 128 x 127 = 32512), then into 32-bit sums, so acc_g is exact; then, as the oracle, in
 *   group order, sum = sum + (s_g acc_g + 0f), and y = sum x s_x.
 * </pre>
 * Groups must hold whole pairs (an even group size, or one group per row), so that no pair spans two groups.
 */
final class Int8TileMatmul {
    private Int8TileMatmul() {
    }

    private static final VectorSpecies<Short> S = TileRows.S;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, S.vectorShape());
    private static final int TILE_ROWS = TileRows.ROWS;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    /** INT8 tensors with INT8 activations whose groups hold whole pairs, on a machine with 256-bit vectors or more. */
    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.INT8 && spec.activations() == ActivationHint.INT8 && spec.rank() == 2
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL && ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 256
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % 2 == 0)
                && spec.cols() <= Integer.MAX_VALUE / 4;
    }

    static int pairs(TensorSpec spec) {
        return (int) ((spec.cols() + 1) / 2);
    }

    /** Tiles and tile-ordered scales of an INT8 tensor, in new native memory freed when unreachable. */
    record Tiles(MemorySegment values, MemorySegment scales) {
    }

    /** One pass over the tensor, its rows split over {@code pool}. */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool) {
        Arena arena = Arena.ofAuto();
        Tiles tiles = new Tiles(arena.allocate((long) TileRows.tiles(spec) * pairs(spec) * 2 * TILE_ROWS, 64),
                arena.allocate((long) TileRows.tiles(spec) * spec.groupsPerRow() * TILE_ROWS * 4, 64));
        pool.run((int) spec.rows(), (r0, r1) -> repackRows(spec, data, tiles, r0, r1));
        return tiles;
    }

    private static void repackRows(TensorSpec spec, MemorySegment data, Tiles tiles, int r0, int r1) {
        int k = (int) spec.cols();
        int p = pairs(spec);
        int groups = (int) spec.groupsPerRow();
        MemorySegment values = tiles.values();
        MemorySegment scales = tiles.scales();
        long scalesOffset = spec.scalesOffset();
        for (int r = r0; r < r1; r++) {
            long rowBase = (long) r * k;
            long at = (long) (r / TILE_ROWS) * p * 2 * TILE_ROWS + 2L * (r % TILE_ROWS);
            for (int i = 0; i + 1 < k; i += 2, at += 2L * TILE_ROWS) {
                values.set(U16, at, data.get(U16, rowBase + i));
            }
            if (k % 2 == 1) {
                values.set(ValueLayout.JAVA_BYTE, at, data.get(ValueLayout.JAVA_BYTE, rowBase + k - 1));
            }
            TileRows.putF32(data, scalesOffset, groups, r, scales);
        }
    }

    /** Per worker thread: a tile's results, even rows then odd rows. */
    private static final ThreadLocal<float[]> TILE_RESULTS = ThreadLocal.withInitial(() -> new float[TILE_ROWS]);

    /**
     * Tiles [tile0, tile1) for every token: codes of token t at {@code q[t * 2P ..]} (zero past K), results at
     * {@code y[t * N + row]}.
     */
    static void tiles(TensorSpec spec, Tiles w, short[] q, float[] tokenScales, float[] y, int batch, int tile0,
                      int tile1) {
        int n = (int) spec.rows();
        int p = pairs(spec);
        int groups = (int) spec.groupsPerRow();
        int groupPairs = groups == 1 ? p : (int) spec.effectiveGroupSize() / 2;
        int half = TILE_ROWS / 2;
        float[] out = TILE_RESULTS.get();
        for (int tile = tile0; tile < tile1; tile++) {
            long tileBase = (long) tile * p * 2 * TILE_ROWS;
            for (int t = 0; t < batch; t++) {
                int qo = t * 2 * p;
                FloatVector even = FloatVector.zero(F);
                FloatVector odd = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    IntVector accEven = IntVector.zero(I);
                    IntVector accOdd = IntVector.zero(I);
                    int end = Math.min(p, (g + 1) * groupPairs);
                    for (int pair = g * groupPairs; pair < end; pair++) {
                        ShortVector v = ShortVector.fromMemorySegment(S, w.values(),
                                tileBase + (long) pair * 2 * TILE_ROWS, LE);
                        ShortVector lo = v.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8);
                        ShortVector hi = v.lanewise(VectorOperators.ASHR, 8);
                        IntVector products = lo.mul(q[qo + 2 * pair]).add(hi.mul(q[qo + 2 * pair + 1]))
                                .reinterpretAsInts();
                        accEven = accEven.add(products.lanewise(VectorOperators.LSHL, 16)
                                .lanewise(VectorOperators.ASHR, 16));
                        accOdd = accOdd.add(products.lanewise(VectorOperators.ASHR, 16));
                    }
                    long at = ((long) tile * groups + g) * TILE_ROWS * 4;
                    FloatVector sEven = FloatVector.fromMemorySegment(F, w.scales(), at, LE);
                    FloatVector sOdd = FloatVector.fromMemorySegment(F, w.scales(), at + 4L * half, LE);
                    even = even.add(sEven.mul((FloatVector) accEven.convert(VectorOperators.I2F, 0)).add(0f));
                    odd = odd.add(sOdd.mul((FloatVector) accOdd.convert(VectorOperators.I2F, 0)).add(0f));
                }
                even.mul(tokenScales[t]).intoArray(out, 0);  // y = sum x s_x, as the oracle
                odd.mul(tokenScales[t]).intoArray(out, half);
                TileRows.store(out, y, t * n, tile * TILE_ROWS, n);
            }
        }
    }
}
