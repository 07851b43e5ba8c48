package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * INT4 and INT4_ASYM x F32 activations by float lookup tables ({@link #tilesF32}) on tiles of rows, as {@link
 * SignTileMatmul} does, with four bit planes instead of mask and sign. With INT8 activations these tiles were read
 * by int16 lookup tables (three vpermw a plane and chunk); {@link NibbleTileMatmul} reads INT4 faster on every
 * width (PanamaBackend#isInt4 has the figures), so INT8 activations take its tiles.
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack} from either file layout); R = TileRows.ROWS rows
 * per tile, chunk c = values 16c .. 16c+15:
 *   at (t C + c) * 8R bytes: for each bit p = 0..3 of the unsigned field u (code + 8 for INT4, the code for
 *   INT4_ASYM), R little-endian u16 words, lane r: bit i = bit p of u of value 16c+i of row R t + r.
 *   Rows past N and values past K are 0.
 * Scales (and INT4_ASYM mins): f32, at ((t G + g) R + j) * 4: j < R/2 the even rows of the tile, then the odd rows.
 * Tables: per token, {@link LookupTables#buildFloatTables}'s (see {@link #tilesF32}).
 * </pre>
 * Groups must be whole chunks (a multiple of 16 values, or one group per row). Chosen with the sign tiles, where
 * vectors of 16 int lanes hold a float table ({@link SignTileMatmul#FLOAT_TABLES}).
 */
final class Int4TileMatmul {
    private Int4TileMatmul() {
    }

    private static final int R = TileRows.ROWS;
    private static final VectorSpecies<Short> S = TileRows.S;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, S.vectorShape());
    private static final int CHUNK_VALUES = LookupTables.CHUNK_VALUES;
    static final int CHUNK_BYTES = 8 * R;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);

    static boolean supports(TensorSpec spec) {
        Encoding e = spec.encoding();
        ActivationHint a = spec.activations();
        return (e == Encoding.INT4 || e == Encoding.INT4_ASYM)
                && a == ActivationHint.F32 && SignTileMatmul.FLOAT_TABLES
                && spec.rank() == 2 && spec.cols() <= Integer.MAX_VALUE / 16
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % CHUNK_VALUES == 0)
                && (spec.layout() == TensorSpec.LAYOUT_CANONICAL || spec.layout() == TensorSpec.LAYOUT_PACKED);
    }

    /** Tiles, and scales and mins (INT4_ASYM; else null) in tile order, in native memory from {@code memory}. */
    record Tiles(MemorySegment planes, MemorySegment scales, MemorySegment mins) {
    }

    /** One pass over the tensor, its rows split over {@code pool}. */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        long tiles = TileRows.tiles(spec);
        long groupSlots = tiles * spec.groupsPerRow() * R * 4;
        Tiles t = new Tiles(memory.allocate(tiles * LookupTables.chunks(spec) * CHUNK_BYTES),
                memory.allocate(groupSlots),
                spec.encoding() == Encoding.INT4_ASYM ? memory.allocate(groupSlots) : null);
        pool.run((int) spec.rows(), (r0, r1) -> repackRows(spec, data, t, r0, r1));
        return t;
    }

    private static void repackRows(TensorSpec spec, MemorySegment data, Tiles t, int r0, int r1) {
        int chunks = LookupTables.chunks(spec);
        int groups = (int) spec.groupsPerRow();
        long scalesOffset = spec.scalesOffset();  // once: each call walks the tensor's shape
        long minsOffset = t.mins() != null ? spec.minsOffset() : 0;
        boolean packed = spec.layout() == TensorSpec.LAYOUT_PACKED;
        long words = spec.wordsPerRow();
        long rowBytes = packed ? PackedCodes.rowBytes(spec) : 0;
        for (int r = r0; r < r1; r++) {
            int lane = r % R;
            long tileBase = (long) (r / R) * chunks * CHUNK_BYTES + 2L * lane;
            for (int c = 0; c < chunks; c++) {
                for (int p = 0; p < 4; p++) {
                    int bits;
                    if (packed) {
                        // Chunk c is block c / 4, fields at bits 4s of its bytes 16h .. 16h + 15 (s = c % 4 / 2,
                        // h = c % 2); the field is u (PackedCodes). Bit p of byte i's field into bit i.
                        long at = r * rowBytes + 32L * (c / 4) + 16L * (c % 2);
                        int shift = 4 * (c % 4 / 2) + p;
                        bits = (int) Long.compress(data.get(U64, at) >>> shift, LOW_BITS)
                                | (int) Long.compress(data.get(U64, at + 8) >>> shift, LOW_BITS) << 8;
                    } else {  // plane p of row r: u64 words at (4 r + p) * words
                        long word = data.getAtIndex(U64, (4L * r + p) * words + c / 4);
                        bits = (int) (word >>> (CHUNK_VALUES * (c % 4))) & 0xffff;
                    }
                    t.planes().set(U16, tileBase + (long) c * CHUNK_BYTES + 2L * R * p, (short) bits);
                }
            }
            TileRows.putF32(data, scalesOffset, groups, r, t.scales());
            if (t.mins() != null) {
                TileRows.putF32(data, minsOffset, groups, r, t.mins());
            }
        }
    }

    private static final long LOW_BITS = 0x0101010101010101L;

    /** Chunks per group: groups are whole chunks (or one group spans the row). */
    private static int groupChunks(TensorSpec spec) {
        return spec.groupsPerRow() == 1 ? LookupTables.chunks(spec) : (int) spec.effectiveGroupSize() / CHUNK_VALUES;
    }

    /** Per worker thread: two tiles' results, each even rows then odd rows. */
    private static final ThreadLocal<float[]> TILE_RESULTS = ThreadLocal.withInitial(() -> new float[2 * R]);

    /**
     * F32 activations (vectors of 16 int lanes, {@link SignTileMatmul#FLOAT_TABLES}): tiles [tile0, tile1) for every
     * token against its float tables ({@link LookupTables#buildFloatTables}, int bits, at {@code tables[t * stride
     * ..]}), looked up with selectFrom on int lanes (vpermd): the even rows from the low halves of the int lanes, the
     * odd rows from the high halves. Per group, S_p = the lookups of plane p, sum u x = S_0 + 2 S_1 + 4 S_2 + 8 S_3,
     * and with X_g = {@code groupSums[t * G + g]} (the group's sum of activations) the oracle's term
     * s_g (sum u x - 8 X_g) (INT4) or s_g sum u x + m_g X_g (INT4_ASYM); y = the sum of the terms. Not exact: the
     * float sums run in another order than the oracle's, as on every F32 path. Tiles go in pairs (a last single tile
     * is its own B): each table load serves both, and two streams of weights are in flight (JMH 4096x14336 INT4 g32,
     * 4 copies, alternated three times: 424-520 -> 484-578 calls/s).
     */
    static void tilesF32(TensorSpec spec, Tiles w, int[] tables, float[] groupSums, float[] y, int batch, int tile0,
                         int tile1) {
        int n = (int) spec.rows();
        int chunks = LookupTables.chunks(spec);
        int groups = (int) spec.groupsPerRow();
        int groupChunks = groupChunks(spec);
        int stride = LookupTables.floatTableLength(spec);
        boolean asym = w.mins() != null;
        int half = R / 2;
        float[] out = TILE_RESULTS.get();
        long tileBytes = (long) chunks * CHUNK_BYTES;
        for (int tile = tile0; tile < tile1; tile += 2) {
            int count = Math.min(2, tile1 - tile);
            long baseA = tile * tileBytes;
            long baseB = count == 2 ? baseA + tileBytes : baseA;
            for (int t = 0; t < batch; t++) {
                int t0 = t * stride;
                FloatVector evenA = FloatVector.zero(F);
                FloatVector oddA = FloatVector.zero(F);
                FloatVector evenB = FloatVector.zero(F);
                FloatVector oddB = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    FloatVector e0A = FloatVector.zero(F);
                    FloatVector e1A = FloatVector.zero(F);
                    FloatVector e2A = FloatVector.zero(F);
                    FloatVector e3A = FloatVector.zero(F);
                    FloatVector o0A = FloatVector.zero(F);
                    FloatVector o1A = FloatVector.zero(F);
                    FloatVector o2A = FloatVector.zero(F);
                    FloatVector o3A = FloatVector.zero(F);
                    FloatVector e0B = FloatVector.zero(F);
                    FloatVector e1B = FloatVector.zero(F);
                    FloatVector e2B = FloatVector.zero(F);
                    FloatVector e3B = FloatVector.zero(F);
                    FloatVector o0B = FloatVector.zero(F);
                    FloatVector o1B = FloatVector.zero(F);
                    FloatVector o2B = FloatVector.zero(F);
                    FloatVector o3B = FloatVector.zero(F);
                    int end = Math.min(chunks, (g + 1) * groupChunks);
                    for (int c = g * groupChunks; c < end; c++) {
                        long atA = baseA + (long) c * CHUNK_BYTES;
                        IntVector p0A = ShortVector.fromMemorySegment(S, w.planes(), atA, LE)
                                .reinterpretAsInts();
                        IntVector p1A = ShortVector.fromMemorySegment(S, w.planes(), atA + 2L * R, LE)
                                .reinterpretAsInts();
                        IntVector p2A = ShortVector.fromMemorySegment(S, w.planes(), atA + 4L * R, LE)
                                .reinterpretAsInts();
                        IntVector p3A = ShortVector.fromMemorySegment(S, w.planes(), atA + 6L * R, LE)
                                .reinterpretAsInts();
                        long atB = baseB + (long) c * CHUNK_BYTES;
                        IntVector p0B = ShortVector.fromMemorySegment(S, w.planes(), atB, LE)
                                .reinterpretAsInts();
                        IntVector p1B = ShortVector.fromMemorySegment(S, w.planes(), atB + 2L * R, LE)
                                .reinterpretAsInts();
                        IntVector p2B = ShortVector.fromMemorySegment(S, w.planes(), atB + 4L * R, LE)
                                .reinterpretAsInts();
                        IntVector p3B = ShortVector.fromMemorySegment(S, w.planes(), atB + 6L * R, LE)
                                .reinterpretAsInts();
                        for (int j = 0; j < 4; j++) {
                            IntVector table = IntVector.fromArray(I, tables, t0 + 16 * (4 * c + j));
                            int low = 4 * j;
                            int high = 16 + 4 * j;
                            e0A = e0A.add(p0A.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o0A = o0A.add(p0A.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e1A = e1A.add(p1A.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o1A = o1A.add(p1A.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e2A = e2A.add(p2A.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o2A = o2A.add(p2A.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e3A = e3A.add(p3A.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o3A = o3A.add(p3A.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e0B = e0B.add(p0B.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o0B = o0B.add(p0B.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e1B = e1B.add(p1B.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o1B = o1B.add(p1B.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e2B = e2B.add(p2B.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o2B = o2B.add(p2B.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e3B = e3B.add(p3B.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o3B = o3B.add(p3B.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                        }
                    }
                    float x = groupSums[t * groups + g];
                    long atA = ((long) tile * groups + g) * R * 4;
                    long atB = count == 2 ? atA + (long) groups * R * 4 : atA;
                    FloatVector uxA = e0A.add(e1A.mul(2f)).add(e2A.mul(4f)).add(e3A.mul(8f));
                    FloatVector uxOddA = o0A.add(o1A.mul(2f)).add(o2A.mul(4f)).add(o3A.mul(8f));
                    FloatVector scaleEvenA = FloatVector.fromMemorySegment(F, w.scales(), atA, LE);
                    FloatVector scaleOddA = FloatVector.fromMemorySegment(F, w.scales(), atA + 4L * half, LE);
                    if (asym) {
                        evenA = evenA.add(scaleEvenA.mul(uxA)
                                .add(FloatVector.fromMemorySegment(F, w.mins(), atA, LE).mul(x)));
                        oddA = oddA.add(scaleOddA.mul(uxOddA)
                                .add(FloatVector.fromMemorySegment(F, w.mins(), atA + 4L * half, LE).mul(x)));
                    } else {
                        evenA = evenA.add(scaleEvenA.mul(uxA.sub(8f * x)));
                        oddA = oddA.add(scaleOddA.mul(uxOddA.sub(8f * x)));
                    }
                    FloatVector uxB = e0B.add(e1B.mul(2f)).add(e2B.mul(4f)).add(e3B.mul(8f));
                    FloatVector uxOddB = o0B.add(o1B.mul(2f)).add(o2B.mul(4f)).add(o3B.mul(8f));
                    FloatVector scaleEvenB = FloatVector.fromMemorySegment(F, w.scales(), atB, LE);
                    FloatVector scaleOddB = FloatVector.fromMemorySegment(F, w.scales(), atB + 4L * half, LE);
                    if (asym) {
                        evenB = evenB.add(scaleEvenB.mul(uxB)
                                .add(FloatVector.fromMemorySegment(F, w.mins(), atB, LE).mul(x)));
                        oddB = oddB.add(scaleOddB.mul(uxOddB)
                                .add(FloatVector.fromMemorySegment(F, w.mins(), atB + 4L * half, LE).mul(x)));
                    } else {
                        evenB = evenB.add(scaleEvenB.mul(uxB.sub(8f * x)));
                        oddB = oddB.add(scaleOddB.mul(uxOddB.sub(8f * x)));
                    }
                }
                evenA.intoArray(out, 0);
                oddA.intoArray(out, half);
                evenB.intoArray(out, R);
                oddB.intoArray(out, R + half);
                TileRows.store(out, 0, y, t * n, tile * R, n);
                if (count == 2) {
                    TileRows.store(out, R, y, t * n, (tile + 1) * R, n);
                }
            }
        }
    }
}
