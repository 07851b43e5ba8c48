package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * INT8 x F32 activations on tiles of 8 rows, one per 32-bit lane. Written for machines without vpermw (AVX2),
 * where rows widened to floats one at a time ({@link Int8Matmul#rowsF32}) stored and reloaded every value: here
 * each byte is shifted into place in its lane, converted and multiplied by the broadcast activation, 8 rows at
 * once; faster with AVX-512 too, so used there as well (see PanamaBackend#upload).
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack}); R = 8 rows per tile (4 at 128 bits), Q = ceil(K / 4)
 *   quads per row:
 *   at ((t Q + p) R + r) * 4 bytes: u32, byte i = code of value 4 p + i of row R t + r. Rows past N and values past
 *   K are 0.
 * Scales: f32, at ((t G + g) R + r) * 4.
 * Per tile, token and group, lane by lane: code i of a lane is (v << 24 - 8 i) >> 24; codes times x in two float
 *   sums (bytes 0, 2 and 1, 3: two FMA chains), y = sum_g s_g (both sums), in group order. Float sums in another
 *   order than the reference's: equal within rounding.
 * </pre>
 * Groups must hold whole quads (a multiple of 4 values) or be one per row.
 */
final class Int8FloatTileMatmul {
    private Int8FloatTileMatmul() {
    }

    /** 256-bit vectors where there are (AVX-512 machines too, as before), else 128 (NEON's width). */
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED.vectorBitSize() >= 256
            ? IntVector.SPECIES_256 : IntVector.SPECIES_128;
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, I.vectorShape());
    /** Rows per tile: one per 32-bit lane (8, or 4 at 128 bits). */
    static final int ROWS = I.length();
    private static final int QUAD_BYTES = 4 * ROWS;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** INT8 with F32 activations in groups of whole quads. */
    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.INT8 && spec.activations() == ActivationHint.F32 && spec.rank() == 2
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % 4 == 0)
                && spec.cols() <= Integer.MAX_VALUE / 4;
    }

    static int quads(TensorSpec spec) {
        return (int) ((spec.cols() + 3) / 4);
    }

    static int tiles(TensorSpec spec) {
        return (int) ((spec.rows() + ROWS - 1) / ROWS);
    }

    /** Tiles and tile-ordered scales, in new native memory from {@code memory}. */
    record Tiles(MemorySegment codes, MemorySegment scales) {
    }

    /** One pass over the tensor, its rows split over {@code pool}. */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        Tiles tiles = new Tiles(memory.allocate((long) tiles(spec) * quads(spec) * QUAD_BYTES),
                memory.allocate((long) tiles(spec) * spec.groupsPerRow() * ROWS * 4));
        pool.run((int) spec.rows(), (r0, r1) -> repackRows(spec, data, tiles, r0, r1));
        return tiles;
    }

    private static void repackRows(TensorSpec spec, MemorySegment data, Tiles tiles, int r0, int r1) {
        long k = spec.cols();
        int quads = quads(spec);
        int groups = (int) spec.groupsPerRow();
        long scalesOffset = spec.scalesOffset();  // once: each call walks the tensor's shape
        for (int r = r0; r < r1; r++) {
            long at = ((long) (r / ROWS) * quads * ROWS + r % ROWS) * 4;
            for (long i = 0; i < k; i++) {
                tiles.codes().set(ValueLayout.JAVA_BYTE, at + i / 4 * QUAD_BYTES + i % 4,
                        data.get(ValueLayout.JAVA_BYTE, r * k + i));
            }
            TileRows.putF32InRowOrder(data, scalesOffset, groups, r, ROWS, tiles.scales());
        }
    }

    /** Per worker thread: a pair of tiles' results, rows in order. */
    private static final ThreadLocal<float[]> TILE_RESULTS = ThreadLocal.withInitial(() -> new float[2 * ROWS]);

    /**
     * Tiles [tile0, tile1) for every token: token t's activations at {@code x[t * K ..]}; results at
     * {@code y[t * N + row]}. Tiles go in pairs (A and B; a last single tile is its own B): each broadcast
     * activation serves both.
     */
    static void tiles(TensorSpec spec, Tiles w, float[] x, float[] y, int batch, int tile0, int tile1) {
        int n = (int) spec.rows();
        int k = (int) spec.cols();
        int quads = quads(spec);
        int groups = (int) spec.groupsPerRow();
        int groupQuads = groups == 1 ? quads : (int) spec.effectiveGroupSize() / 4;
        long tileBytes = (long) quads * QUAD_BYTES;
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
                    int end = Math.min(quads, (g + 1) * groupQuads);
                    int full = Math.min(end, k / 4);  // quads whose four values are all below K
                    int p = g * groupQuads;
                    for (; p < full; p++) {
                        long at = (long) p * QUAD_BYTES;
                        IntVector va = IntVector.fromMemorySegment(I, w.codes(), baseA + at, LE);
                        IntVector vb = IntVector.fromMemorySegment(I, w.codes(), baseB + at, LE);
                        int i = x0 + 4 * p;
                        FloatVector xv = FloatVector.broadcast(F, x[i]);
                        a0 = codeOf(va, 24).fma(xv, a0);
                        b0 = codeOf(vb, 24).fma(xv, b0);
                        xv = FloatVector.broadcast(F, x[i + 1]);
                        a1 = codeOf(va, 16).fma(xv, a1);
                        b1 = codeOf(vb, 16).fma(xv, b1);
                        xv = FloatVector.broadcast(F, x[i + 2]);
                        a0 = codeOf(va, 8).fma(xv, a0);
                        b0 = codeOf(vb, 8).fma(xv, b0);
                        xv = FloatVector.broadcast(F, x[i + 3]);
                        a1 = ((FloatVector) va.lanewise(VectorOperators.ASHR, 24).convert(VectorOperators.I2F, 0))
                                .fma(xv, a1);
                        b1 = ((FloatVector) vb.lanewise(VectorOperators.ASHR, 24).convert(VectorOperators.I2F, 0))
                                .fma(xv, b1);
                    }
                    for (; p < end; p++) {  // the last quad, cut by K: its codes past K are 0, x there is not read
                        long at = (long) p * QUAD_BYTES;
                        IntVector va = IntVector.fromMemorySegment(I, w.codes(), baseA + at, LE);
                        IntVector vb = IntVector.fromMemorySegment(I, w.codes(), baseB + at, LE);
                        for (int i = 0; 4 * p + i < k; i++) {
                            FloatVector xv = FloatVector.broadcast(F, x[x0 + 4 * p + i]);
                            a0 = codeOf(va, 24 - 8 * i).fma(xv, a0);
                            b0 = codeOf(vb, 24 - 8 * i).fma(xv, b0);
                        }
                    }
                    long atA = ((long) tile * groups + g) * ROWS * 4;
                    long atB = pair == 2 ? atA + (long) groups * ROWS * 4 : atA;
                    yA = yA.add(FloatVector.fromMemorySegment(F, w.scales(), atA, LE).mul(a0.add(a1)));
                    yB = yB.add(FloatVector.fromMemorySegment(F, w.scales(), atB, LE).mul(b0.add(b1)));
                }
                yA.intoArray(out, 0);
                yB.intoArray(out, ROWS);
                TileRows.storeInOrder(out, pair * ROWS, y, t * n, tile * ROWS, n);
            }
        }
    }

    /**
     * The byte of each lane that a left shift by {@code up} brings to the top, sign-extended, as floats. Three
     * operations: C2 inlines it into the kernel (a vector passed through a call that is not inlined is boxed, and
     * the kernel would run several times slower, not twice as fast as the row-widening kernel it replaced).
     */
    private static FloatVector codeOf(IntVector v, int up) {
        return (FloatVector) v.lanewise(VectorOperators.LSHL, up).lanewise(VectorOperators.ASHR, 24)
                .convert(VectorOperators.I2F, 0);
    }
}
