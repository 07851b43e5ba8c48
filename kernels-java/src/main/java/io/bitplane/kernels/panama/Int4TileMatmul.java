package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.PackedCodes;
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

    /** Tiles, and scales and mins (INT4_ASYM; else null) in tile order, in native memory freed when unreachable. */
    record Tiles(MemorySegment planes, MemorySegment scales, MemorySegment mins) {
    }

    /** One pass over the tensor, its rows split over {@code pool}. */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool) {
        Arena arena = Arena.ofAuto();
        long tiles = TileRows.tiles(spec);
        long groupSlots = tiles * spec.groupsPerRow() * R * 4;
        Tiles t = new Tiles(arena.allocate(tiles * LookupTables.chunks(spec) * CHUNK_BYTES, 64),
                arena.allocate(groupSlots, 64),
                spec.encoding() == Encoding.INT4_ASYM ? arena.allocate(groupSlots, 64) : null);
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

    /** Per worker thread: a tile's results, even rows then odd rows. */
    private static final ThreadLocal<float[]> TILE_RESULTS = ThreadLocal.withInitial(() -> new float[R]);

    /**
     * F32 activations (vectors of 16 int lanes, {@link SignTileMatmul#FLOAT_TABLES}): tiles [tile0, tile1) for every
     * token against its float tables ({@link LookupTables#buildFloatTables}, int bits, at {@code tables[t * stride
     * ..]}), looked up with selectFrom on int lanes (vpermd): the even rows from the low halves of the int lanes, the
     * odd rows from the high halves. Per group, S_p = the lookups of plane p, sum u x = S_0 + 2 S_1 + 4 S_2 + 8 S_3,
     * and with X_g = {@code groupSums[t * G + g]} (the group's sum of activations) the oracle's term
     * s_g (sum u x - 8 X_g) (INT4) or s_g sum u x + m_g X_g (INT4_ASYM); y = the sum of the terms. Not exact: the
     * float sums run in another order than the oracle's, as on every F32 path.
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
        for (int tile = tile0; tile < tile1; tile++) {
            long tileBase = (long) tile * chunks * CHUNK_BYTES;
            for (int t = 0; t < batch; t++) {
                int t0 = t * stride;
                FloatVector even = FloatVector.zero(F);
                FloatVector odd = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    FloatVector e0 = FloatVector.zero(F);
                    FloatVector e1 = FloatVector.zero(F);
                    FloatVector e2 = FloatVector.zero(F);
                    FloatVector e3 = FloatVector.zero(F);
                    FloatVector o0 = FloatVector.zero(F);
                    FloatVector o1 = FloatVector.zero(F);
                    FloatVector o2 = FloatVector.zero(F);
                    FloatVector o3 = FloatVector.zero(F);
                    int end = Math.min(chunks, (g + 1) * groupChunks);
                    for (int c = g * groupChunks; c < end; c++) {
                        long at = tileBase + (long) c * CHUNK_BYTES;
                        IntVector p0 = ShortVector.fromMemorySegment(S, w.planes(), at, LE).reinterpretAsInts();
                        IntVector p1 = ShortVector.fromMemorySegment(S, w.planes(), at + 2L * R, LE)
                                .reinterpretAsInts();
                        IntVector p2 = ShortVector.fromMemorySegment(S, w.planes(), at + 4L * R, LE)
                                .reinterpretAsInts();
                        IntVector p3 = ShortVector.fromMemorySegment(S, w.planes(), at + 6L * R, LE)
                                .reinterpretAsInts();
                        for (int j = 0; j < 4; j++) {
                            IntVector table = IntVector.fromArray(I, tables, t0 + 16 * (4 * c + j));
                            int low = 4 * j;
                            int high = 16 + 4 * j;
                            e0 = e0.add(p0.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o0 = o0.add(p0.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e1 = e1.add(p1.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o1 = o1.add(p1.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e2 = e2.add(p2.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o2 = o2.add(p2.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            e3 = e3.add(p3.lanewise(VectorOperators.LSHR, low).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                            o3 = o3.add(p3.lanewise(VectorOperators.LSHR, high).and(15).selectFrom(table)
                                    .reinterpretAsFloats());
                        }
                    }
                    float x = groupSums[t * groups + g];
                    FloatVector ux = e0.add(e1.mul(2f)).add(e2.mul(4f)).add(e3.mul(8f));
                    FloatVector uxOdd = o0.add(o1.mul(2f)).add(o2.mul(4f)).add(o3.mul(8f));
                    long at = ((long) tile * groups + g) * R * 4;
                    FloatVector scaleEven = FloatVector.fromMemorySegment(F, w.scales(), at, LE);
                    FloatVector scaleOdd = FloatVector.fromMemorySegment(F, w.scales(), at + 4L * half, LE);
                    if (asym) {
                        even = even.add(scaleEven.mul(ux)
                                .add(FloatVector.fromMemorySegment(F, w.mins(), at, LE).mul(x)));
                        odd = odd.add(scaleOdd.mul(uxOdd)
                                .add(FloatVector.fromMemorySegment(F, w.mins(), at + 4L * half, LE).mul(x)));
                    } else {
                        even = even.add(scaleEven.mul(ux.sub(8f * x)));
                        odd = odd.add(scaleOdd.mul(uxOdd.sub(8f * x)));
                    }
                }
                even.intoArray(out, 0);
                odd.intoArray(out, half);
                TileRows.store(out, y, t * n, tile * R, n);
            }
        }
    }
}
