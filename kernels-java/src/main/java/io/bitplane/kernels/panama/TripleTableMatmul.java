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
 * BINARY, TERNARY, INT4 and INT4_ASYM x F32 activations by float lookup tables over three values, for machines
 * without vpermw (AVX2), where {@link SignTileMatmul}'s and {@link Int4TileMatmul}'s 16-entry tables would be
 * emulated. AVX2 permutes 32-bit lanes natively ({@code vpermd}, which {@code IntVector.selectFrom} compiles to, its
 * index wrap included): an 8-entry table of float sums fits one 256-bit vector, and one lookup serves 8 rows x 3
 * values. Before it, F32 activations went to the row-expanding kernels on AVX2: 4096x14336, 2 threads, binary 10.6
 * G weights/s, ternary 8.2, INT4 3.0. A ternary value is two bits, +1 and -1, whose word of -1 bits meets tables of
 * negated sums; an INT4 value is four bits of u, whose bit p meets tables times 2^p: every encoding runs the same
 * loop over words.
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack}); R = 8 rows per tile, W = ceil(K / 32) words per row,
 *   P planes (BINARY 1, TERNARY 2, INT4 and INT4_ASYM 4), V = P W words per row in the tiles:
 *   at ((t V + P w + p) R + r) * 4 bytes: u32, bit i of value 32 w + i of row R t + r: BINARY (p = 0) code -1 (the
 *   file's bit); TERNARY code +1 (p = 0) and code -1 (p = 1); INT4 bit p of u = code + 8 (INT4_ASYM: of u =
 *   code). Rows past N and values past K are 0.
 * Scales (and INT4_ASYM mins): f32, at ((t G + g) R + r) * 4.
 * Tables (per token, floats, at (P w + p) * 88): table j = 0 .. 10 of word w at (P w + p) * 88 + 8 j; entry m is
 *   the sum of the activations x[32 w + 3 j + i] over the bits i set in m (x past K and the third value of table
 *   10 count 0), times the plane's factor: TERNARY 1, -1; INT4 1, 2, 4, 8. Lookup j takes the word shifted right by
 *   3 j (vpermd reads the low three bits of each lane).
 * Per tile, token and group, lane by lane: F_g = sum of the lookups (a tree of adds per word, then one add per
 *   word into the group's sum); sum code x = X_g - 2 F_g for BINARY (X_g the group's sum of x), F_g for TERNARY
 *   and INT4_ASYM, F_g - 8 X_g for INT4; y = sum_g s_g (sum code x) (+ m_g X_g for INT4_ASYM), in group order.
 *   Float sums in another order than the reference's: equal within rounding.
 * </pre>
 * Groups must be whole words (a multiple of 32 values) or one per row.
 */
final class TripleTableMatmul {
    private TripleTableMatmul() {
    }

    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    /** Rows per tile: one per 32-bit lane. */
    static final int ROWS = 8;
    private static final int WORD_VALUES = 32;
    private static final int WORD_BYTES = 4 * ROWS;
    /** Tables per word: ten of three values, one of the last two. */
    private static final int TABLES = 11;
    private static final int WORD_TABLE_FLOATS = 8 * TABLES;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);

    /**
     * BINARY bit planes, and TERNARY, INT4 and INT4_ASYM in either layout, with F32 activations in groups of whole
     * words, where 256-bit vectors are native.
     */
    static boolean supports(TensorSpec spec) {
        Encoding e = spec.encoding();
        boolean layout = spec.layout() == TensorSpec.LAYOUT_CANONICAL
                || e != Encoding.BINARY && spec.layout() == TensorSpec.LAYOUT_PACKED;
        return (e == Encoding.BINARY || e == Encoding.TERNARY || e == Encoding.INT4 || e == Encoding.INT4_ASYM)
                && spec.activations() == ActivationHint.F32 && spec.rank() == 2 && layout
                && IntVector.SPECIES_PREFERRED.vectorBitSize() >= 256
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % WORD_VALUES == 0)
                && spec.cols() <= Integer.MAX_VALUE / 4;
    }

    static int words(TensorSpec spec) {
        return (int) ((spec.cols() + WORD_VALUES - 1) / WORD_VALUES);
    }

    /** Words of the tiles per word of values: BINARY one, TERNARY two (+1 and -1 bits), INT4 four (bits of u). */
    static int planes(TensorSpec spec) {
        return switch (spec.encoding()) {
            case TERNARY -> 2;
            case INT4, INT4_ASYM -> 4;
            default -> 1;
        };
    }

    /** What plane p's tables are multiplied by. */
    private static float planeFactor(TensorSpec spec, int p) {
        return switch (spec.encoding()) {
            case TERNARY -> p == 0 ? 1f : -1f;
            case INT4, INT4_ASYM -> 1 << p;
            default -> 1f;
        };
    }

    static int tiles(TensorSpec spec) {
        return (int) ((spec.rows() + ROWS - 1) / ROWS);
    }

    /** Table floats per token. */
    static int tableLength(TensorSpec spec) {
        return planes(spec) * words(spec) * WORD_TABLE_FLOATS;
    }

    /** Tiles, and scales and mins (INT4_ASYM; else null) in tile order, in native memory from {@code memory}. */
    record Tiles(MemorySegment bits, MemorySegment scales, MemorySegment mins) {
    }

    /**
     * One pass over the tensor, its rows split over {@code pool}; null for a packed TERNARY tensor holding fields of 3
     * (the code 2, which the format reads and no writer writes): the backend's other kernels read it.
     */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        long groupSlots = (long) tiles(spec) * spec.groupsPerRow() * ROWS * 4;
        Tiles tiles = new Tiles(
                memory.allocate((long) tiles(spec) * planes(spec) * words(spec) * WORD_BYTES),
                memory.allocate(groupSlots),
                spec.encoding() == Encoding.INT4_ASYM ? memory.allocate(groupSlots) : null);
        java.util.concurrent.atomic.AtomicBoolean codeTwo = new java.util.concurrent.atomic.AtomicBoolean();
        pool.run((int) spec.rows(), (r0, r1) -> {
            if (!repackRows(spec, data, tiles, r0, r1)) {
                codeTwo.set(true);
            }
        });
        return codeTwo.get() ? null : tiles;
    }

    /** Rows [r0, r1) into the tiles; false if a BINARY or TERNARY code is outside -1 .. 1. */
    private static boolean repackRows(TensorSpec spec, MemorySegment data, Tiles tiles, int r0, int r1) {
        int k = (int) spec.cols();
        int words = words(spec);
        int planes = planes(spec);
        int groups = (int) spec.groupsPerRow();
        long scalesOffset = spec.scalesOffset();  // once: each call walks the tensor's shape
        long minsOffset = tiles.mins() != null ? spec.minsOffset() : 0;
        int fieldOfCodeZero = spec.encoding() == Encoding.INT4 ? 8 : 0;  // INT4_ASYM's code is u
        int[] codes = new int[WORD_VALUES * words];  // zero past K
        for (int r = r0; r < r1; r++) {
            ScalarMatmul.decodeRow(spec, data, r, k, codes);  // either layout
            long at = ((long) (r / ROWS) * planes * words * ROWS + r % ROWS) * 4;
            for (int w = 0; w < words; w++) {
                for (int p = 0; p < planes; p++) {
                    int bits = 0;
                    for (int i = 0; i < WORD_VALUES && WORD_VALUES * w + i < k; i++) {
                        int code = codes[WORD_VALUES * w + i];
                        if (planes < 4 && (code < -1 || code > 1)) {
                            return false;
                        }
                        boolean set = switch (planes) {
                            case 1 -> code < 0;  // BINARY: the file's bit
                            case 2 -> p == 0 ? code > 0 : code < 0;  // TERNARY: +1, then -1
                            default -> (code + fieldOfCodeZero >> p & 1) == 1;  // INT4: bit p of u
                        };
                        bits |= (set ? 1 : 0) << i;
                    }
                    tiles.bits().set(U32, at + (long) (planes * w + p) * WORD_BYTES, bits);
                }
            }
            TileRows.putF32InRowOrder(data, scalesOffset, groups, r, ROWS, tiles.scales());
            if (tiles.mins() != null) {
                TileRows.putF32InRowOrder(data, minsOffset, groups, r, ROWS, tiles.mins());
            }
        }
        return true;
    }

    /** Lane m of BIT[i] is 1 when bit i of m is set, else 0: a table is the sum over i of BIT[i] x_i. */
    private static final FloatVector[] BIT = new FloatVector[3];

    static {
        for (int i = 0; i < 3; i++) {
            float[] lanes = new float[8];
            for (int m = 0; m < 8; m++) {
                lanes[m] = (m >> i & 1) == 0 ? 0f : 1f;
            }
            BIT[i] = FloatVector.fromArray(F, lanes, 0);
        }
    }

    /** One token's tables: activations {@code x[x0 .. x0 + K)} into {@code tables[t0 .. t0 + tableLength)}. */
    static void tables(TensorSpec spec, float[] x, int x0, float[] tables, int t0) {
        int k = (int) spec.cols();
        int words = words(spec);
        int planes = planes(spec);
        for (int w = 0; w < words; w++) {
            for (int j = 0; j < TABLES; j++) {
                int v = WORD_VALUES * w + 3 * j;
                float a = v < k ? x[x0 + v] : 0f;
                float b = v + 1 < k ? x[x0 + v + 1] : 0f;
                float c = j < TABLES - 1 && v + 2 < k ? x[x0 + v + 2] : 0f;
                FloatVector table = BIT[0].mul(a).add(BIT[1].mul(b)).add(BIT[2].mul(c));
                int at = t0 + planes * w * WORD_TABLE_FLOATS + 8 * j;
                for (int p = 0; p < planes; p++) {
                    table.mul(planeFactor(spec, p)).intoArray(tables, at + p * WORD_TABLE_FLOATS);
                }
            }
        }
    }

    /** Per worker thread: a pair of tiles' results, rows in order. */
    private static final ThreadLocal<float[]> TILE_RESULTS = ThreadLocal.withInitial(() -> new float[2 * ROWS]);

    /**
     * Tiles [tile0, tile1) for every token: token t's tables at {@code tables[t * tableLength ..]}, its group sums of
     * activations at {@code xSums[t * G ..]}; results at {@code y[t * N + row]}. Tiles go in pairs (A and B; a last
     * single tile is its own B): each table loaded serves both.
     */
    static void tiles(TensorSpec spec, Tiles w, float[] tables, float[] xSums, float[] y, int batch, int tile0,
                      int tile1) {
        int n = (int) spec.rows();
        int planes = planes(spec);
        int words = planes * words(spec);  // words of the tiles per row
        int groups = (int) spec.groupsPerRow();
        int groupWords = groups == 1 ? words : planes * (int) spec.effectiveGroupSize() / WORD_VALUES;
        // sum code x = xFactor X_g + fFactor F_g: BINARY X_g - 2 F_g, TERNARY and INT4_ASYM F_g, INT4 F_g - 8 X_g;
        // INT4_ASYM adds m_g X_g to each group's term
        float xFactor = switch (spec.encoding()) {
            case BINARY -> 1f;
            case INT4 -> -8f;
            default -> 0f;
        };
        boolean asym = w.mins() != null;
        float fFactor = planes == 1 ? -2f : 1f;
        int tableLength = tableLength(spec);
        long tileBytes = (long) words * WORD_BYTES;
        float[] out = TILE_RESULTS.get();
        for (int tile = tile0; tile < tile1; tile += 2) {
            int pair = Math.min(2, tile1 - tile);
            long baseA = tile * tileBytes;
            long baseB = pair == 2 ? baseA + tileBytes : baseA;
            for (int t = 0; t < batch; t++) {
                int to = t * tableLength;
                FloatVector yA = FloatVector.zero(F);
                FloatVector yB = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    FloatVector fA = FloatVector.zero(F);
                    FloatVector fB = FloatVector.zero(F);
                    int end = Math.min(words, (g + 1) * groupWords);
                    for (int wd = g * groupWords; wd < end; wd++) {
                        long at = (long) wd * WORD_BYTES;
                        IntVector a = IntVector.fromMemorySegment(I, w.bits(), baseA + at, LE);
                        IntVector b = IntVector.fromMemorySegment(I, w.bits(), baseB + at, LE);
                        int o = to + wd * WORD_TABLE_FLOATS;
                        // Eleven lookups a tile, summed as a tree so that one add a word joins the group's sum (a
                        // chain of eleven float adds a word would wait on their latency).
                        IntVector tb = FloatVector.fromArray(F, tables, o).reinterpretAsInts();
                        FloatVector a0 = a.selectFrom(tb).reinterpretAsFloats();
                        FloatVector b0 = b.selectFrom(tb).reinterpretAsFloats();
                        tb = FloatVector.fromArray(F, tables, o + 8).reinterpretAsInts();
                        a0 = a0.add(a.lanewise(VectorOperators.LSHR, 3).selectFrom(tb).reinterpretAsFloats());
                        b0 = b0.add(b.lanewise(VectorOperators.LSHR, 3).selectFrom(tb).reinterpretAsFloats());
                        tb = FloatVector.fromArray(F, tables, o + 16).reinterpretAsInts();
                        FloatVector a1 = a.lanewise(VectorOperators.LSHR, 6).selectFrom(tb).reinterpretAsFloats();
                        FloatVector b1 = b.lanewise(VectorOperators.LSHR, 6).selectFrom(tb).reinterpretAsFloats();
                        tb = FloatVector.fromArray(F, tables, o + 24).reinterpretAsInts();
                        a1 = a1.add(a.lanewise(VectorOperators.LSHR, 9).selectFrom(tb).reinterpretAsFloats());
                        b1 = b1.add(b.lanewise(VectorOperators.LSHR, 9).selectFrom(tb).reinterpretAsFloats());
                        tb = FloatVector.fromArray(F, tables, o + 32).reinterpretAsInts();
                        FloatVector a2 = a.lanewise(VectorOperators.LSHR, 12).selectFrom(tb).reinterpretAsFloats();
                        FloatVector b2 = b.lanewise(VectorOperators.LSHR, 12).selectFrom(tb).reinterpretAsFloats();
                        tb = FloatVector.fromArray(F, tables, o + 40).reinterpretAsInts();
                        a2 = a2.add(a.lanewise(VectorOperators.LSHR, 15).selectFrom(tb).reinterpretAsFloats());
                        b2 = b2.add(b.lanewise(VectorOperators.LSHR, 15).selectFrom(tb).reinterpretAsFloats());
                        tb = FloatVector.fromArray(F, tables, o + 48).reinterpretAsInts();
                        FloatVector a3 = a.lanewise(VectorOperators.LSHR, 18).selectFrom(tb).reinterpretAsFloats();
                        FloatVector b3 = b.lanewise(VectorOperators.LSHR, 18).selectFrom(tb).reinterpretAsFloats();
                        tb = FloatVector.fromArray(F, tables, o + 56).reinterpretAsInts();
                        a3 = a3.add(a.lanewise(VectorOperators.LSHR, 21).selectFrom(tb).reinterpretAsFloats());
                        b3 = b3.add(b.lanewise(VectorOperators.LSHR, 21).selectFrom(tb).reinterpretAsFloats());
                        tb = FloatVector.fromArray(F, tables, o + 64).reinterpretAsInts();
                        a3 = a3.add(a.lanewise(VectorOperators.LSHR, 24).selectFrom(tb).reinterpretAsFloats());
                        b3 = b3.add(b.lanewise(VectorOperators.LSHR, 24).selectFrom(tb).reinterpretAsFloats());
                        tb = FloatVector.fromArray(F, tables, o + 72).reinterpretAsInts();
                        a2 = a2.add(a.lanewise(VectorOperators.LSHR, 27).selectFrom(tb).reinterpretAsFloats());
                        b2 = b2.add(b.lanewise(VectorOperators.LSHR, 27).selectFrom(tb).reinterpretAsFloats());
                        tb = FloatVector.fromArray(F, tables, o + 80).reinterpretAsInts();
                        a1 = a1.add(a.lanewise(VectorOperators.LSHR, 30).selectFrom(tb).reinterpretAsFloats());
                        b1 = b1.add(b.lanewise(VectorOperators.LSHR, 30).selectFrom(tb).reinterpretAsFloats());
                        fA = fA.add(a0.add(a1).add(a2.add(a3)));
                        fB = fB.add(b0.add(b1).add(b2.add(b3)));
                    }
                    float groupSum = xSums[t * groups + g];
                    float xSum = xFactor * groupSum;
                    long atA = ((long) tile * groups + g) * ROWS * 4;
                    long atB = pair == 2 ? atA + (long) groups * ROWS * 4 : atA;
                    FloatVector termA = FloatVector.fromMemorySegment(F, w.scales(), atA, LE)
                            .mul(fA.mul(fFactor).add(xSum));
                    FloatVector termB = FloatVector.fromMemorySegment(F, w.scales(), atB, LE)
                            .mul(fB.mul(fFactor).add(xSum));
                    if (asym) {
                        termA = termA.add(FloatVector.fromMemorySegment(F, w.mins(), atA, LE).mul(groupSum));
                        termB = termB.add(FloatVector.fromMemorySegment(F, w.mins(), atB, LE).mul(groupSum));
                    }
                    yA = yA.add(termA);
                    yB = yB.add(termB);
                }
                yA.intoArray(out, 0);
                yB.intoArray(out, ROWS);
                TileRows.storeInOrder(out, pair * ROWS, y, t * n, tile * ROWS, n);
            }
        }
    }
}
