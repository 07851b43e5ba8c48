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
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * BINARY x INT8 activations by lookup tables of bytes, for machines without vpermw (AVX2), where {@link
 * SignTileMatmul}'s 16-bit tables would be emulated. A 128-bit byte lookup is one {@code pshufb}: it looks up 16
 * rows at once in a 16-entry byte table, and each entry stands for four values of a row, so one instruction does 64
 * products (multiplying in 16-bit lanes needs a shift, a mask, a multiply and an add per 16). Entries must fit a byte,
 * so each code q is split into q = 16 h + l, h = q >> 4 in [-8, 7], l = q & 15 in [0, 15], with a table of each.
 * The lookups use {@code selectFrom}, which wraps its indexes; {@code rearrange(v.toShuffle())} also checked them,
 * five more instructions per lookup vector, and ran at 60% of the speed. Tiles go in pairs, and each tile of a pair
 * reads its own copy of the tables: with one copy, each table loaded once served both, but C2 compiles a byte
 * {@code selectFrom} to a pshufb that overwrites its table, so it copied each table before its first lookup, and
 * eight tables live at once left too few of the 16 vector registers: the four int16 sums went to the stack, 95
 * instructions a step in all. From two copies (built with the tables, 128 bytes more a step), loads C2 cannot merge,
 * a step takes 80 and nothing spills: 4096x14336 from the caches 1.2-1.8x on one thread, 1.1-1.2x on two; from DRAM
 * 1.0-1.1x, which it reads at only 11-15 GB/s, for reasons not found (docs/PERFORMANCE.md).
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack}); R = 16 rows per tile, S = ceil(K / 16) steps per row:
 *   at ((t S + s) 2 + c) * R bytes, c = 0, 1: byte r = bits of values 16 s + 8 c .. 16 s + 8 c + 7 of row R t + r
 *   (bit i = value 16 s + 8 c + i; the file's bytes of the row). Rows past N and values past K are 0.
 * Scales: f32 at ((t G + g) R + r) * 4, rows in order.
 * Tables (per token, bytes, at s * 256, two equal copies of 128 bytes, the second for a pair's tile B): at c * 64
 *   in a copy, for byte c = 0, 1 of the step: L of its low nibble, L of its high nibble, H of its low nibble, H of
 *   its high nibble, 16 entries each; entry m of the table of values v .. v+3 is
 *   L: sum over bits i of m of (q[v+i] & 15), in [0, 60];  H: sum of (q[v+i] >> 4), in [-32, 28].
 * Per tile, token and step: four lookups add up in byte lanes (L in [0, 240], read unsigned; H in [-128, 112]),
 *   widen into int16 sums, and every {@link #RUN} steps into int32: F = sum of bit x q = 16 H + L per row.
 *   acc_g = X_g - 2 F_g (code = 1 - 2 bit, X_g the group's sum of codes); as the oracle, in group order,
 *   sum = sum + (s_g acc_g + 0f), and y = sum x s_x.
 * </pre>
 * Groups must be whole steps (a multiple of 16 values) or one per row.
 */
final class ByteTableMatmul {
    private ByteTableMatmul() {
    }

    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    /** Rows per tile: one per byte lane of a 128-bit vector. */
    static final int ROWS = 16;
    private static final int STEP_VALUES = 16;
    private static final int STEP_BYTES = 2 * ROWS;
    /** Bytes of one copy of a step's tables, and of both copies. */
    private static final int COPY = 128;
    private static final int TABLE_BYTES = 2 * COPY;
    /** Steps per int16 run: L adds at most 4 x 60 per step and is the first to reach 32767. */
    private static final int RUN = 32767 / 240;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** BINARY bit planes with INT8 activations in groups of whole steps, on a machine with 256-bit vectors. */
    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.BINARY && spec.activations() == ActivationHint.INT8 && spec.rank() == 2
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL && ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 256
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % STEP_VALUES == 0)
                && spec.cols() <= Integer.MAX_VALUE / 16;
    }

    static int steps(TensorSpec spec) {
        return (int) ((spec.cols() + STEP_VALUES - 1) / STEP_VALUES);
    }

    static int tiles(TensorSpec spec) {
        return (int) ((spec.rows() + ROWS - 1) / ROWS);
    }

    /** Table bytes per token. */
    static int tableLength(TensorSpec spec) {
        return steps(spec) * TABLE_BYTES;
    }

    /** Tiles and tile-ordered scales, in new native memory from {@code memory}. */
    record Tiles(MemorySegment bits, MemorySegment scales) {
    }

    /** One pass over the tensor, its rows split over {@code pool}. */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        Tiles tiles = new Tiles(memory.allocate((long) tiles(spec) * steps(spec) * STEP_BYTES),
                memory.allocate((long) tiles(spec) * spec.groupsPerRow() * ROWS * 4));
        pool.run((int) spec.rows(), (r0, r1) -> repackRows(spec, data, tiles, r0, r1));
        return tiles;
    }

    private static void repackRows(TensorSpec spec, MemorySegment data, Tiles tiles, int r0, int r1) {
        long rowBytes = spec.wordsPerRow() * 8;
        int usedBytes = (int) ((spec.cols() + 7) / 8);
        int steps = steps(spec);
        int groups = (int) spec.groupsPerRow();
        long scalesOffset = spec.scalesOffset();
        for (int r = r0; r < r1; r++) {
            long tileBase = (long) (r / ROWS) * steps * STEP_BYTES + r % ROWS;
            for (int c = 0; c < usedBytes; c++) {
                // Bits past K in the row's last byte are padding: the activations there are 0, so they add nothing.
                tiles.bits().set(ValueLayout.JAVA_BYTE, tileBase + (long) c * ROWS,
                        data.get(ValueLayout.JAVA_BYTE, r * rowBytes + c));
            }
            TileRows.putF32InRowOrder(data, scalesOffset, groups, r, ROWS, tiles.scales());
        }
    }

    /** Lane m of BIT[i] is all ones when bit i of m is set: a table is the sum over i of (BIT[i] and value i). */
    private static final ByteVector[] BIT = new ByteVector[4];

    static {
        for (int i = 0; i < 4; i++) {
            byte[] lanes = new byte[16];
            for (int m = 0; m < 16; m++) {
                lanes[m] = (byte) ((m >> i & 1) == 0 ? 0 : -1);
            }
            BIT[i] = ByteVector.fromArray(B, lanes, 0);
        }
    }

    /**
     * One token's tables: codes {@code q[q0 .. q0 + K)} into {@code tables[t0 .. t0 + tableLength)} (codes past K
     * count as 0).
     */
    static void tables(TensorSpec spec, short[] q, int q0, byte[] tables, int t0) {
        int k = (int) spec.cols();
        for (int v = 0, s = 0; v < STEP_VALUES * steps(spec); v += 8, s++) {
            // Values v .. v+7 are one byte of a row; s counts bytes: step s / 2, byte c = s % 2.
            int at = t0 + (s / 2) * TABLE_BYTES + (s % 2) * 64;
            for (int nibble = 0; nibble < 2; nibble++) {
                ByteVector l = ByteVector.zero(B);
                ByteVector h = ByteVector.zero(B);
                for (int i = 0; i < 4; i++) {
                    int j = v + 4 * nibble + i;
                    int code = j < k ? q[q0 + j] : 0;
                    l = l.add(BIT[i].and((byte) (code & 15)));
                    h = h.add(BIT[i].and((byte) (code >> 4)));
                }
                for (int copy = 0; copy < TABLE_BYTES; copy += COPY) {
                    l.intoArray(tables, at + copy + 16 * nibble);
                    h.intoArray(tables, at + copy + 32 + 16 * nibble);
                }
            }
        }
    }

    /** Per worker thread: a pair of tiles' results, rows in order. */
    private static final ThreadLocal<float[]> TILE_RESULTS = ThreadLocal.withInitial(() -> new float[2 * ROWS]);

    /**
     * Tiles [tile0, tile1) for every token: token t's tables at {@code tables[t * tableLength ..]}, its group sums
     * of codes at {@code codeSums[t * G ..]}, its scale at {@code tokenScales[t]}; results at {@code y[t * N + row]}.
     * Tiles go in pairs (A and B; a last single tile is its own B), each reading its own copy of the tables, so
     * that two streams of weights are in flight, which is what a kernel without prefetch needs to read at the DRAM's
     * pace (tried: a run of steps of A and then the same of B, one tile a loop, faster from the caches and slower
     * from DRAM).
     */
    static void tiles(TensorSpec spec, Tiles w, byte[] tables, int[] codeSums, float[] tokenScales, float[] y,
                      int batch, int tile0, int tile1) {
        int n = (int) spec.rows();
        int steps = steps(spec);
        int groups = (int) spec.groupsPerRow();
        int groupSteps = groups == 1 ? steps : (int) spec.effectiveGroupSize() / STEP_VALUES;
        int tableLength = tableLength(spec);
        long tileBytes = (long) steps * STEP_BYTES;
        int half = I.length();
        float[] out = TILE_RESULTS.get();
        for (int tile = tile0; tile < tile1; tile += 2) {
            int pair = Math.min(2, tile1 - tile);
            long baseA = tile * tileBytes;
            long baseB = pair == 2 ? baseA + tileBytes : baseA;
            for (int t = 0; t < batch; t++) {
                int to = t * tableLength;
                FloatVector lowA = FloatVector.zero(F);
                FloatVector highA = FloatVector.zero(F);
                FloatVector lowB = FloatVector.zero(F);
                FloatVector highB = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    IntVector lowSumA = IntVector.zero(I);
                    IntVector highSumA = IntVector.zero(I);
                    IntVector lowSumB = IntVector.zero(I);
                    IntVector highSumB = IntVector.zero(I);
                    int end = Math.min(steps, (g + 1) * groupSteps);
                    for (int r0 = g * groupSteps; r0 < end; r0 += RUN) {
                        int r1 = Math.min(end, r0 + RUN);
                        ShortVector lA16 = ShortVector.zero(S);
                        ShortVector hA16 = ShortVector.zero(S);
                        ShortVector lB16 = ShortVector.zero(S);
                        ShortVector hB16 = ShortVector.zero(S);
                        for (int s = r0; s < r1; s++) {
                            long at = (long) s * STEP_BYTES;
                            int o = to + s * TABLE_BYTES;
                            // selectFrom wraps its indexes (index & 15), which keeps a byte's low nibble; the high
                            // nibble comes down by a shift of 32-bit lanes, the next byte's bits it brings in above
                            // it cut by the wrap (byte shifts are emulated, and C2 shifts 16-bit lanes by a count in
                            // a register, which it reloaded here: two more instructions a shift). Tile A reads the
                            // first copy of the step's tables, B the second (see above). Written out for each, not a
                            // helper: C2 did not inline one here and boxed its vectors.
                            ByteVector a0 = ByteVector.fromMemorySegment(B, w.bits(), baseA + at, LE);
                            ByteVector a1 = ByteVector.fromMemorySegment(B, w.bits(), baseA + at + ROWS, LE);
                            ByteVector ah0 = a0.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4)
                                    .reinterpretAsBytes();
                            ByteVector ah1 = a1.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4)
                                    .reinterpretAsBytes();
                            lA16 = lA16.add((ShortVector) a0.selectFrom(ByteVector.fromArray(B, tables, o))
                                    .add(ah0.selectFrom(ByteVector.fromArray(B, tables, o + 16)))
                                    .add(a1.selectFrom(ByteVector.fromArray(B, tables, o + 64)))
                                    .add(ah1.selectFrom(ByteVector.fromArray(B, tables, o + 80)))
                                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, S, 0));
                            hA16 = hA16.add((ShortVector) a0.selectFrom(ByteVector.fromArray(B, tables, o + 32))
                                    .add(ah0.selectFrom(ByteVector.fromArray(B, tables, o + 48)))
                                    .add(a1.selectFrom(ByteVector.fromArray(B, tables, o + 96)))
                                    .add(ah1.selectFrom(ByteVector.fromArray(B, tables, o + 112)))
                                    .convertShape(VectorOperators.B2S, S, 0));
                            ByteVector b0 = ByteVector.fromMemorySegment(B, w.bits(), baseB + at, LE);
                            ByteVector b1 = ByteVector.fromMemorySegment(B, w.bits(), baseB + at + ROWS, LE);
                            ByteVector bh0 = b0.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4)
                                    .reinterpretAsBytes();
                            ByteVector bh1 = b1.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4)
                                    .reinterpretAsBytes();
                            int bo = o + COPY;
                            lB16 = lB16.add((ShortVector) b0.selectFrom(ByteVector.fromArray(B, tables, bo))
                                    .add(bh0.selectFrom(ByteVector.fromArray(B, tables, bo + 16)))
                                    .add(b1.selectFrom(ByteVector.fromArray(B, tables, bo + 64)))
                                    .add(bh1.selectFrom(ByteVector.fromArray(B, tables, bo + 80)))
                                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, S, 0));
                            hB16 = hB16.add((ShortVector) b0.selectFrom(ByteVector.fromArray(B, tables, bo + 32))
                                    .add(bh0.selectFrom(ByteVector.fromArray(B, tables, bo + 48)))
                                    .add(b1.selectFrom(ByteVector.fromArray(B, tables, bo + 96)))
                                    .add(bh1.selectFrom(ByteVector.fromArray(B, tables, bo + 112)))
                                    .convertShape(VectorOperators.B2S, S, 0));
                        }
                        // F = 16 H + L, rows 0..7 in the low half, 8..15 in the high half
                        lowSumA = lowSumA.add(((IntVector) hA16.convertShape(VectorOperators.S2I, I, 0))
                                        .lanewise(VectorOperators.LSHL, 4))
                                .add((IntVector) lA16.convertShape(VectorOperators.S2I, I, 0));
                        highSumA = highSumA.add(((IntVector) hA16.convertShape(VectorOperators.S2I, I, 1))
                                        .lanewise(VectorOperators.LSHL, 4))
                                .add((IntVector) lA16.convertShape(VectorOperators.S2I, I, 1));
                        lowSumB = lowSumB.add(((IntVector) hB16.convertShape(VectorOperators.S2I, I, 0))
                                        .lanewise(VectorOperators.LSHL, 4))
                                .add((IntVector) lB16.convertShape(VectorOperators.S2I, I, 0));
                        highSumB = highSumB.add(((IntVector) hB16.convertShape(VectorOperators.S2I, I, 1))
                                        .lanewise(VectorOperators.LSHL, 4))
                                .add((IntVector) lB16.convertShape(VectorOperators.S2I, I, 1));
                    }
                    int x = codeSums[t * groups + g];
                    long atA = ((long) tile * groups + g) * ROWS * 4;
                    long atB = pair == 2 ? atA + (long) groups * ROWS * 4 : atA;
                    FloatVector lowAccA = (FloatVector) lowSumA.mul(-2).add(x).convert(VectorOperators.I2F, 0);
                    FloatVector highAccA = (FloatVector) highSumA.mul(-2).add(x).convert(VectorOperators.I2F, 0);
                    FloatVector lowAccB = (FloatVector) lowSumB.mul(-2).add(x).convert(VectorOperators.I2F, 0);
                    FloatVector highAccB = (FloatVector) highSumB.mul(-2).add(x).convert(VectorOperators.I2F, 0);
                    lowA = lowA.add(FloatVector.fromMemorySegment(F, w.scales(), atA, LE).mul(lowAccA).add(0f));
                    highA = highA.add(FloatVector.fromMemorySegment(F, w.scales(), atA + 4L * half, LE)
                            .mul(highAccA).add(0f));
                    lowB = lowB.add(FloatVector.fromMemorySegment(F, w.scales(), atB, LE).mul(lowAccB).add(0f));
                    highB = highB.add(FloatVector.fromMemorySegment(F, w.scales(), atB + 4L * half, LE)
                            .mul(highAccB).add(0f));
                }
                float tokenScale = tokenScales[t];  // y = sum x s_x, as the oracle
                lowA.mul(tokenScale).intoArray(out, 0);
                highA.mul(tokenScale).intoArray(out, half);
                lowB.mul(tokenScale).intoArray(out, ROWS);
                highB.mul(tokenScale).intoArray(out, ROWS + half);
                TileRows.storeInOrder(out, pair * ROWS, y, t * n, tile * ROWS, n);
            }
        }
    }
}
