package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

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
 *   at t T + 2R p bytes: R bytes, byte r = value 2p of row R t + r, then R bytes of value 2p + 1. T = 2R P, or
 *   where that is 8 pages or more, 2R P rounded up to whole 4 KB pages plus 1 KB ({@link #tileStride}).
 *   Rows past N, values past K and the padding are 0.
 * Scales: f32, at ((t G + g) R + j) * 4 for group g: j < R/2 the even rows 2j of the tile, then the odd rows, the
 *   order in which 32-bit lanes hold the low and high halves of 16-bit lane pairs.
 * Per tile, token and group, lane by lane: each run of R bytes widened to 16-bit lanes (one instruction, vpmovsxbw),
 *   value 2p times code q[2p] plus value 2p + 1 times q[2p + 1] in 16 bits (at most 2 x 128 x 127 = 32512), then
 *   into 32-bit sums, so acc_g is exact; then, as the oracle, in group order, sum = sum + (s_g acc_g + 0f), and
 *   y = sum x s_x.
 * Into 32-bit sums without taking the 16-bit pairs apart: a 32-bit lane holds an even row's pair sum e (low half)
 *   and the odd row's o (high half). With EVEN_BIAS added to e in 16 bits, the low half is e + 32768, from 0 to
 *   65535, so the lane is exactly 65536 o + e + 32768; its arithmetic shift by 16 is o. Summed over the group's n
 *   pairs, A = sum of lanes and O = sum of o give the even rows' sum E = A - 65536 O - 32768 n (modulo 2^32, and
 *   exact since |E| < 2^31), the odd rows' O: per pair and tile a 16-bit add, a 32-bit add, a shift and an add,
 *   where taking the pairs apart (shift left, shift right; shift right) and summing each took five operations.
 * </pre>
 * Groups must hold whole pairs (an even group size, or one group per row), so that no pair spans two groups.
 * The two values of a pair were once the two bytes of one 16-bit lane, taken apart by 16-bit shifts, for which C2
 * moved the count into a register each time (vmovd, then the shift by register: three instructions where the
 * immediate shift is one), twelve such shifts a pair of four tiles. Widened by vpmovsxbw instead (4096 x 14336, 2
 * threads, `bitplane bench`, jars alternated seven times): 22.3-23.6 -> 23.6-25.6 G weights/s; -XX:UseAVX=2
 * 23.0-23.3 -> 26.3-26.8 (twice); -XX:MaxVectorSize=16 15.6 -> 20.0-20.3 (twice); from the caches (JMH, 1024 x
 * 14336, one thread) 1,370-1,395 -> 1,635-1,644 calls/s.
 */
final class Int8TileMatmul {
    private Int8TileMatmul() {
    }

    private static final VectorSpecies<Short> S = TileRows.S;
    /** One run of a tile's bytes: R values, widened to S. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class,
            VectorShape.forBitSize(S.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, S.vectorShape());
    private static final int TILE_ROWS = TileRows.ROWS;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** INT8 tensors with INT8 activations whose groups hold whole pairs (tiles as wide as the preferred vectors). */
    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.INT8 && spec.activations() == ActivationHint.INT8 && spec.rank() == 2
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % 2 == 0)
                && spec.cols() <= Integer.MAX_VALUE / 4;
    }

    static int pairs(TensorSpec spec) {
        return (int) ((spec.cols() + 1) / 2);
    }

    /**
     * Bytes from one tile's start to the next: a tile of 8 pages or more is padded to whole 4 KB pages plus a quarter
     * of a page, so that the four streams of a pass stand a quarter of a page apart (1 KB; tiles under 8 pages are
     * not padded). With K a power of two the tiles had been whole pages, their streams all at one offset in a page.
     * `bitplane bench --backend java --activations int8 --encodings int8`, two threads, alternated, G weights/s:
     * 4096x14336 22.6-24.2 -> 23.6-28.1 (six rounds), 32000x2048 (the 418M model's output projection) 23.3-24.3 ->
     * 26.5-26.6, 2048x5632 22.6-23.0 -> 24.0-24.4; JMH (`MatmulBenchmark -p encoding=int8@32 -p activations=int8
     * -p backend=java -p copies=8`, three alternated rounds, calls/s) 4096x14336 409-413 -> 456-470, 32000x2048
     * 359-374 -> 376-400. Why is not established: the same padding did not help the nibble tiles (INT4, three
     * streams) or the sign tiles' four (binary x F32 lost 8%), where a binary tile's two halves gained from running
     * half a page apart (SignTileMatmul#PHASE).
     */
    private static long tileStride(TensorSpec spec) {
        long bytes = (long) pairs(spec) * 2 * TILE_ROWS;
        int page = TileRows.PAGE;
        return bytes < 8 * page ? bytes : (bytes + page - 1) / page * page + page / TILES_PER_PASS;
    }

    /** Tiles and tile-ordered scales of an INT8 tensor, in new native memory from {@code memory}. */
    record Tiles(MemorySegment values, MemorySegment scales) {
    }

    /** One pass over the tensor, its rows split over {@code pool}. */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        Tiles tiles = new Tiles(memory.allocate((long) TileRows.tiles(spec) * tileStride(spec)),
                memory.allocate((long) TileRows.tiles(spec) * spec.groupsPerRow() * TILE_ROWS * 4));
        pool.run((int) spec.rows(), (r0, r1) -> repackRows(spec, data, tiles, r0, r1));
        return tiles;
    }

    private static void repackRows(TensorSpec spec, MemorySegment data, Tiles tiles, int r0, int r1) {
        int k = (int) spec.cols();
        int groups = (int) spec.groupsPerRow();
        MemorySegment values = tiles.values();
        MemorySegment scales = tiles.scales();
        long scalesOffset = spec.scalesOffset();
        long stride = tileStride(spec);
        for (int r = r0; r < r1; r++) {
            long rowBase = (long) r * k;
            long at = (long) (r / TILE_ROWS) * stride + r % TILE_ROWS;
            for (int i = 0; i < k; i += 2, at += 2L * TILE_ROWS) {
                values.set(ValueLayout.JAVA_BYTE, at, data.get(ValueLayout.JAVA_BYTE, rowBase + i));
                if (i + 1 < k) {
                    values.set(ValueLayout.JAVA_BYTE, at + TILE_ROWS, data.get(ValueLayout.JAVA_BYTE, rowBase + i + 1));
                }
            }
            TileRows.putF32(data, scalesOffset, groups, r, scales);
        }
    }

    /**
     * Added to the 16-bit sum of each pair of an even row (the low half of a 32-bit lane), it keeps that half from 0
     * to 65535, so that the 32-bit lane is that half plus 65536 times the odd row's sum, exactly; see {@link #tiles}.
     */
    private static final int EVEN_BIAS = 0x8000;

    /** Tiles summed in one pass over a token's codes (see {@link #tiles}). */
    private static final int TILES_PER_PASS = 4;

    /** Per worker thread: a pass's tiles' results, tile by tile, each even rows then odd rows. */
    private static final ThreadLocal<float[]> TILE_RESULTS =
            ThreadLocal.withInitial(() -> new float[TILES_PER_PASS * TILE_ROWS]);

    /**
     * Tiles [tile0, tile1) for every token: codes of token t at {@code q[t * 2P ..]} (zero past K), results at
     * {@code y[t * N + row]}. Tiles go four at a time (A to D; the missing ones of a last pass read A again, their
     * sums unused): each code broadcast serves all four, and four streams of weights are in flight. From DRAM (2
     * threads), one tile at a time -> pairs: 4096x14336 29-31 -> 56-59 G weights/s, 32000x2048 (the 418M model's
     * output projection) 26-32 -> 29-37; AVX2 code 25-28 -> 30-32. Pairs -> fours (an Intel Xeon at 26-27 GB/s,
     * 4096x14336 cycled through 1 GB): 20.9-21.3 -> 22.8-23.0, AVX2 code level (20.8-20.9 against 20.0-21.7), from
     * the caches level. Written out tile by tile: with the products and terms in helper methods C2 did not inline
     * them, and boxed vectors ran 14.1-14.6. The codes are broadcast once a pair, not in each multiply: with the
     * EVEN_BIAS sums C2 otherwise reached NodeCountInliningCutoff before the last load of a pass and boxed it (the
     * allocation tests caught it). Those sums (one operation fewer per tile and pair, see the class comment): JMH
     * 256x4096 one thread from L2, 26,369-27,837 -> 28,216-29,287 calls/s; `bitplane bench` 4096x14336 from DRAM,
     * six alternated runs, 23.2-24.4 -> 23.8-25.1 G weights/s. Interleaving a pass's four tiles pair by pair into
     * one stream ran 17.8-18.6: four streams of weights in flight read DRAM faster than one.
     */
    static void tiles(TensorSpec spec, Tiles w, short[] q, float[] tokenScales, float[] y, int batch, int tile0,
                      int tile1) {
        int n = (int) spec.rows();
        int p = pairs(spec);
        int groups = (int) spec.groupsPerRow();
        int groupPairs = groups == 1 ? p : (int) spec.effectiveGroupSize() / 2;
        long tileBytes = tileStride(spec);
        long scaleBytes = (long) groups * TILE_ROWS * 4;
        float[] out = TILE_RESULTS.get();
        ShortVector bias = IntVector.broadcast(I, EVEN_BIAS).reinterpretAsShorts();  // on the even rows' halves
        for (int tile = tile0; tile < tile1; tile += TILES_PER_PASS) {
            int count = Math.min(TILES_PER_PASS, tile1 - tile);
            long baseA = tile * tileBytes;
            long baseB = count > 1 ? baseA + tileBytes : baseA;
            long baseC = count > 2 ? baseA + 2 * tileBytes : baseA;
            long baseD = count > 3 ? baseA + 3 * tileBytes : baseA;
            long scalesA = (long) tile * scaleBytes;
            long scalesB = count > 1 ? scalesA + scaleBytes : scalesA;
            long scalesC = count > 2 ? scalesA + 2 * scaleBytes : scalesA;
            long scalesD = count > 3 ? scalesA + 3 * scaleBytes : scalesA;
            for (int t = 0; t < batch; t++) {
                int qo = t * 2 * p;
                FloatVector evenA = FloatVector.zero(F);
                FloatVector oddA = FloatVector.zero(F);
                FloatVector evenB = FloatVector.zero(F);
                FloatVector oddB = FloatVector.zero(F);
                FloatVector evenC = FloatVector.zero(F);
                FloatVector oddC = FloatVector.zero(F);
                FloatVector evenD = FloatVector.zero(F);
                FloatVector oddD = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    int end = Math.min(p, (g + 1) * groupPairs);
                    // Each pair's even-row sum carries EVEN_BIAS; the sums start with the opposite of their total.
                    IntVector start = IntVector.broadcast(I, -EVEN_BIAS * (end - g * groupPairs));
                    IntVector accA = start;
                    IntVector accOddA = IntVector.zero(I);
                    IntVector accB = start;
                    IntVector accOddB = IntVector.zero(I);
                    IntVector accC = start;
                    IntVector accOddC = IntVector.zero(I);
                    IntVector accD = start;
                    IntVector accOddD = IntVector.zero(I);
                    for (int pair = g * groupPairs; pair < end; pair++) {
                        long at = (long) pair * 2 * TILE_ROWS;
                        ShortVector q0 = ShortVector.broadcast(S, q[qo + 2 * pair]);
                        ShortVector q1 = ShortVector.broadcast(S, q[qo + 2 * pair + 1]);
                        IntVector sumsA = widened(w.values(), baseA + at).mul(q0)
                                .add(widened(w.values(), baseA + at + TILE_ROWS).mul(q1)).add(bias)
                                .reinterpretAsInts();
                        IntVector sumsB = widened(w.values(), baseB + at).mul(q0)
                                .add(widened(w.values(), baseB + at + TILE_ROWS).mul(q1)).add(bias)
                                .reinterpretAsInts();
                        IntVector sumsC = widened(w.values(), baseC + at).mul(q0)
                                .add(widened(w.values(), baseC + at + TILE_ROWS).mul(q1)).add(bias)
                                .reinterpretAsInts();
                        IntVector sumsD = widened(w.values(), baseD + at).mul(q0)
                                .add(widened(w.values(), baseD + at + TILE_ROWS).mul(q1)).add(bias)
                                .reinterpretAsInts();
                        accA = accA.add(sumsA);
                        accOddA = accOddA.add(sumsA.lanewise(VectorOperators.ASHR, 16));
                        accB = accB.add(sumsB);
                        accOddB = accOddB.add(sumsB.lanewise(VectorOperators.ASHR, 16));
                        accC = accC.add(sumsC);
                        accOddC = accOddC.add(sumsC.lanewise(VectorOperators.ASHR, 16));
                        accD = accD.add(sumsD);
                        accOddD = accOddD.add(sumsD.lanewise(VectorOperators.ASHR, 16));
                    }
                    long atG = (long) g * TILE_ROWS * 4;
                    evenA = evenA.add(FloatVector.fromMemorySegment(F, w.scales(), scalesA + atG, LE)
                            .mul((FloatVector) accA.sub(accOddA.lanewise(VectorOperators.LSHL, 16))
                                    .convert(VectorOperators.I2F, 0)).add(0f));
                    oddA = oddA.add(FloatVector.fromMemorySegment(F, w.scales(), scalesA + atG + 2L * TILE_ROWS, LE)
                            .mul((FloatVector) accOddA.convert(VectorOperators.I2F, 0)).add(0f));
                    evenB = evenB.add(FloatVector.fromMemorySegment(F, w.scales(), scalesB + atG, LE)
                            .mul((FloatVector) accB.sub(accOddB.lanewise(VectorOperators.LSHL, 16))
                                    .convert(VectorOperators.I2F, 0)).add(0f));
                    oddB = oddB.add(FloatVector.fromMemorySegment(F, w.scales(), scalesB + atG + 2L * TILE_ROWS, LE)
                            .mul((FloatVector) accOddB.convert(VectorOperators.I2F, 0)).add(0f));
                    evenC = evenC.add(FloatVector.fromMemorySegment(F, w.scales(), scalesC + atG, LE)
                            .mul((FloatVector) accC.sub(accOddC.lanewise(VectorOperators.LSHL, 16))
                                    .convert(VectorOperators.I2F, 0)).add(0f));
                    oddC = oddC.add(FloatVector.fromMemorySegment(F, w.scales(), scalesC + atG + 2L * TILE_ROWS, LE)
                            .mul((FloatVector) accOddC.convert(VectorOperators.I2F, 0)).add(0f));
                    evenD = evenD.add(FloatVector.fromMemorySegment(F, w.scales(), scalesD + atG, LE)
                            .mul((FloatVector) accD.sub(accOddD.lanewise(VectorOperators.LSHL, 16))
                                    .convert(VectorOperators.I2F, 0)).add(0f));
                    oddD = oddD.add(FloatVector.fromMemorySegment(F, w.scales(), scalesD + atG + 2L * TILE_ROWS, LE)
                            .mul((FloatVector) accOddD.convert(VectorOperators.I2F, 0)).add(0f));
                }
                float tokenScale = tokenScales[t];  // y = sum x s_x, as the oracle
                int half = TILE_ROWS / 2;
                evenA.mul(tokenScale).intoArray(out, 0);
                oddA.mul(tokenScale).intoArray(out, half);
                evenB.mul(tokenScale).intoArray(out, TILE_ROWS);
                oddB.mul(tokenScale).intoArray(out, TILE_ROWS + half);
                evenC.mul(tokenScale).intoArray(out, 2 * TILE_ROWS);
                oddC.mul(tokenScale).intoArray(out, 2 * TILE_ROWS + half);
                evenD.mul(tokenScale).intoArray(out, 3 * TILE_ROWS);
                oddD.mul(tokenScale).intoArray(out, 3 * TILE_ROWS + half);
                for (int i = 0; i < count; i++) {
                    TileRows.store(out, i * TILE_ROWS, y, t * n, (tile + i) * TILE_ROWS, n);
                }
            }
        }
    }

    /**
     * R bytes at {@code at} as 16-bit lanes, sign-extended. Small enough that C2 always inlines it (its bytecode is
     * under MaxInlineSize), where the larger helpers of the products and terms were not inlined and boxed their
     * vectors; the allocation tests (-Xbatch, three widths) hold it to that.
     */
    private static ShortVector widened(MemorySegment values, long at) {
        return (ShortVector) ByteVector.fromMemorySegment(B, values, at, LE).convertShape(VectorOperators.B2S, S, 0);
    }
}
