package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
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
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * TERNARY x INT8 activations, one scale a row, by lookup tables on rows repacked into tiles of base-3 words: three
 * values make one index of 27, three indexes one 16-bit word, so a row streams 16 bits per 9 values (1.78 bits a
 * weight, where {@link SignTileMatmul}'s mask and sign words stream 2) and takes one lookup per 3 values (where the
 * mask and sign words take six per 16, two of them over 64 entries).
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack} from either file layout); R = 32 rows per tile, the 16-bit
 *   lanes of a 512-bit vector: tile t = rows R t .. R t + R - 1, chunk c = values 9c .. 9c + 8. A row's chunks are
 *   two halves of H = ceil(ceil(K / 9) / 2) chunks (C = 2H). Half h of tile t starts at (2t + h) P bytes, P = the
 *   half's 2R H bytes rounded up to whole 4 KB pages where the half is under 16 KB and that adds at most a quarter,
 *   else 2R H (the tiles start on a page); chunk c is chunk c mod H of half c / H, its R little-endian u16 words
 *   at 2R (c mod H) bytes into the half, lane r the word of row R t + r: index j (0-2) at bits 5j, bit 15 zero.
 *   Index j = d0 + 3 d1 + 9 d2 over the values 9c + 3j + i, digit d_i 0 for the code 0, 1 for +1 and 2 for -1.
 *   Rows past N and values past K are 0 (index 0, whose entry is 0 in every table).
 * Tables, per token: 96 int16 per chunk at 96 c, table j (32 entries) at 96 c + 32 j holding at index m &lt; 27 the
 *   sum of code(d_i(m)) x q[9c + 3j + i] over i (codes past K count 0), and 0 at 27-31 (never looked up).
 * Per tile, chunk and token, R lanes at once: T0[w &amp; 31] + T1[(w &gt;&gt;&gt; 5) &amp; 31]
 *   + T2[w &gt;&gt;&gt; 10]: three vpermw, the wrap of selectFrom's index the mask. The words shift as int lanes (C2
 *   gives a 32-bit shift by a constant an immediate, a 16-bit one a count in a register: SignTileMatmul); the odd
 *   row's bits that an int shift brings into the even row's word land above the five index bits.
 * Step i takes chunks i and H + i of four adjacent tiles: eight streams of weights in flight, as SignTileMatmul's
 *   four tiles of masks and signs are eight. Short halves start on a page, as the mask and sign streams do where K
 *   is a multiple of 1024: the hardware prefetchers stop at a page's end, so a stream that starts inside a page
 *   touches one page more, much of a 3.6 KB half (K = 1024). Long halves are packed: at 4096x14336, whose 51 KB
 *   halves would then all start at the same place in their pages, they read 94-96 G weights/s against 89-93 on
 *   pages (three rounds alternated); at K = 4096 and 5632 either way read alike.
 * Lanes wrap at 16 bits, but a step sums to at most 18 x 127 = 2286 in magnitude and a run of 14 steps to 32004,
 *   so each run's sum is exact; runs add in 32-bit lanes, even rows and odd rows apart (TileRows).
 * The result is the oracle's integer acc = sum of code x q over the row, then y = (0f + (s acc + 0f)) x s_x.
 * </pre>
 * From DRAM (`bitplane bench --backend java --encodings ternary --activations int8 --layout packed`, 2 threads,
 * alternated with the mask and sign tiles), G weights/s: 4096x14336 93-100 against 80-92, 14336x4096 88-94 against
 * 81-87, 5632x2048 83-84 against 77-79, 11264x1024 82-85 against 77-78. How the streams were found
 * (docs/PERFORMANCE.md, "Ternary in base-3 words"): with one stream a tile (four a pass) 4096x14336 read no faster
 * than the mask and sign tiles (78-88); with halves packed end to end, 93-100 there but 59-67 at 11264x1024, whose
 * 3.6 KB halves then touched two pages each. Groups stay with SignTileMatmul: a group of 64 or 128 values does not
 * end on a chunk of 9.
 */
final class Base3TileMatmul {
    private Base3TileMatmul() {
    }

    private static final VectorSpecies<Short> S = TileRows.S;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final int TILE_ROWS = TileRows.ROWS;
    static final int CHUNK_VALUES = 9;
    /** Entries of a chunk's three tables. */
    static final int CHUNK_TABLE = 96;
    /** Steps (two chunks each) per run of int16 sums (see the class comment). */
    static final int RUN_STEPS = 14;
    private static final int TILES_PER_PASS = 4;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    /** TERNARY in either layout with INT8 activations and one scale a row, where vectors have 32 short lanes. */
    static boolean supports(TensorSpec spec) {
        return LookupTables.POSSIBLE && spec.encoding() == Encoding.TERNARY
                && spec.activations() == ActivationHint.INT8 && spec.groupsPerRow() == 1 && spec.rank() == 2
                && spec.cols() <= Integer.MAX_VALUE / 16
                && (spec.layout() == TensorSpec.LAYOUT_CANONICAL || spec.layout() == TensorSpec.LAYOUT_PACKED);
    }

    /** Chunks a row: ceil(K / 9) rounded up to even, so that a row is two halves of {@link #steps} chunks. */
    static int chunks(TensorSpec spec) {
        return 2 * steps(spec);
    }

    /** Chunks in each half of a row (steps of the kernel's loop). */
    static int steps(TensorSpec spec) {
        long c = (spec.cols() + CHUNK_VALUES - 1) / CHUNK_VALUES;
        return (int) ((c + 1) / 2);
    }

    private static final int PAGE = TileRows.PAGE;

    /**
     * Bytes from a tile's first half to its second, and from a tile to the next tile: for halves shorter than
     * {@link #PAGED_HALF_PAGES} pages, a half's words rounded up to whole 4 KB pages where that adds at most a
     * quarter, else the half's words (see the class comment).
     */
    static long halfStride(TensorSpec spec) {
        long bytes = (long) steps(spec) * 2 * TILE_ROWS;
        long pages = (bytes + PAGE - 1) / PAGE * PAGE;
        return bytes < PAGED_HALF_PAGES * PAGE && pages - bytes <= bytes / 4 ? pages : bytes;
    }

    /** Halves of this many pages or more are packed end to end (see the class comment). */
    static final int PAGED_HALF_PAGES = 4;

    /** Table entries per token. */
    static int tableLength(TensorSpec spec) {
        return CHUNK_TABLE * chunks(spec);
    }

    /**
     * The tiles of a TERNARY tensor into new native memory from {@code memory}, one pass over the tensor, its rows
     * split over {@code pool}; null when a packed field is 3 (SignTileMatmul#repack says why).
     */
    static MemorySegment repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        MemorySegment tiles = TileRows.pageAligned(memory, 2 * halfStride(spec) * TileRows.tiles(spec));
        AtomicBoolean codeTwo = new AtomicBoolean();
        pool.run((int) spec.rows(), (r0, r1) -> {
            if (!repackRows(spec, data, tiles, r0, r1)) {
                codeTwo.set(true);
            }
        });
        return codeTwo.get() ? null : tiles;
    }

    /** Index d0 + 3 d1 + 9 d2 of three values from their mask bits m and sign bits s, at m | s &lt;&lt; 3. */
    private static final short[] INDEX = new short[64];

    static {
        for (int bits = 0; bits < 64; bits++) {
            int index = 0;
            for (int i = 2; i >= 0; i--) {
                int digit = (bits >>> i & 1) == 0 ? 0 : (bits >>> (3 + i) & 1) == 0 ? 1 : 2;
                index = 3 * index + digit;
            }
            INDEX[bits] = (short) index;
        }
    }

    /**
     * Repacks rows [r0, r1); false if a packed field among them is 3. The values come 16 at a time as mask and sign
     * bits (SignTileMatmul#ternaryChunk) into a window of bits, from which each word takes 9.
     */
    private static boolean repackRows(TensorSpec spec, MemorySegment data, MemorySegment tiles, int r0, int r1) {
        int chunks = chunks(spec);
        int steps = steps(spec);
        long halfStride = halfStride(spec);
        int sourceChunks = LookupTables.chunks(spec);
        for (int r = r0; r < r1; r++) {
            long at = (long) (r / TILE_ROWS) * 2 * halfStride + 2L * (r % TILE_ROWS);
            long masks = 0;
            long signs = 0;
            int held = 0;  // bits in the window
            int read = 0;  // 16-value chunks read into it
            for (int c = 0; c < chunks; c++) {
                if (held < CHUNK_VALUES) {
                    long bits = read < sourceChunks ? SignTileMatmul.ternaryChunk(spec, data, r, read++) : 0;
                    if ((bits & SignTileMatmul.THREE) != 0) {
                        return false;
                    }
                    masks |= (bits & 0xffff) << held;
                    signs |= (bits >>> 16 & 0xffff) << held;
                    held += 16;
                }
                int word = INDEX[(int) (masks & 7 | (signs & 7) << 3)]
                        | INDEX[(int) (masks >>> 3 & 7 | (signs >>> 3 & 7) << 3)] << 5
                        | INDEX[(int) (masks >>> 6 & 7 | (signs >>> 6 & 7) << 3)] << 10;
                tiles.set(U16, at + c / steps * halfStride + (long) (c % steps) * 2 * TILE_ROWS, (short) word);
                masks >>>= CHUNK_VALUES;
                signs >>>= CHUNK_VALUES;
                held -= CHUNK_VALUES;
            }
        }
        return true;
    }

    /**
     * Lane m of CODE[i]: the code of digit i of m (0, +1 or -1; 0 for m of 27 and above). Made only where a table
     * fits a vector (LookupTables#POSSIBLE); elsewhere this class is never used.
     */
    private static final ShortVector[] CODE = new ShortVector[3];

    static {
        for (int i = 0, place = 1; i < 3 && LookupTables.POSSIBLE; i++, place *= 3) {
            short[] lanes = new short[S.length()];
            for (int m = 0; m < 27; m++) {
                int digit = m / place % 3;
                lanes[m] = (short) (digit == 0 ? 0 : digit == 1 ? 1 : -1);
            }
            CODE[i] = ShortVector.fromArray(S, lanes, 0);
        }
    }

    /**
     * One token's tables from its codes {@code q[q0 .. q0 + K)} into {@code tables[t0 .. t0 + tableLength)}, one
     * vector a table. Adds and multiplies by {@code lanewise}, as LookupTables builds its tables (it says why).
     */
    static void buildTables(TensorSpec spec, short[] q, int q0, short[] tables, int t0) {
        int k = (int) spec.cols();
        int triples = 3 * chunks(spec);
        int whole = k / 3;  // triples with all three values below K: no test per value
        for (int j = 0; j < whole; j++) {
            int i = q0 + 3 * j;
            table(q[i], q[i + 1], q[i + 2]).intoArray(tables, t0 + 32 * j);
        }
        for (int j = whole; j < triples; j++) {
            int i = 3 * j;
            table(code(q, q0, i, k), code(q, q0, i + 1, k), code(q, q0, i + 2, k)).intoArray(tables, t0 + 32 * j);
        }
    }

    /** The table of three codes: lane m = sum of code(d_i(m)) x q_i. */
    private static ShortVector table(short q0, short q1, short q2) {
        return CODE[0].lanewise(VectorOperators.MUL, q0)
                .lanewise(VectorOperators.ADD, CODE[1].lanewise(VectorOperators.MUL, q1))
                .lanewise(VectorOperators.ADD, CODE[2].lanewise(VectorOperators.MUL, q2));
    }

    private static short code(short[] q, int q0, int i, int k) {
        return i < k ? q[q0 + i] : 0;
    }

    /** Per worker thread: the sums of a pass's tiles as floats, tile by tile, each its even rows then its odd rows. */
    private static final ThreadLocal<float[]> TILE_SUMS =
            ThreadLocal.withInitial(() -> new float[TILES_PER_PASS * TILE_ROWS]);

    /**
     * Tiles [tile0, tile1) for every token: tables of token t at {@code tables[t * tableLength ..]}, results at
     * {@code y[t * N + row]}, the row scales read from the file's bytes {@code data}. Tiles go four at a time (a
     * missing one is the first again, its sums unused).
     */
    static void tiles(TensorSpec spec, MemorySegment data, MemorySegment tiles, short[] tables, float[] tokenScales,
                      float[] y, int batch, int tile0, int tile1) {
        int n = (int) spec.rows();
        int chunks = chunks(spec);
        int stride = tableLength(spec);
        long scales = spec.scalesOffset();
        long tileBytes = 2 * halfStride(spec);
        float[] sums = TILE_SUMS.get();
        for (int tile = tile0; tile < tile1; tile += TILES_PER_PASS) {
            int count = Math.min(TILES_PER_PASS, tile1 - tile);
            long base = tile * tileBytes;
            for (int t = 0; t < batch; t++) {
                tileSums(tiles, base, tileBytes, count, chunks, tables, t * stride, sums);
                SignTileMatmul.storeTiles(data, scales, sums, tokenScales[t], tile, count, n, y, t * n);
            }
        }
    }

    /**
     * The exact sums of {@code count} (1 to 4) tiles from {@code base}, {@code tileBytes} apart, for one token's
     * tables at {@code tables[t0 ..]}, converted to float as the oracle's s x acc converts acc, into {@code out} tile
     * by tile, each its even rows then its odd rows. The missing tiles read the first again, their sums unused.
     * Step i takes chunks i and i + C/2 of each tile (see the class comment).
     */
    private static void tileSums(MemorySegment tiles, long base, long tileBytes, int count, int chunks,
                                 short[] tables, int t0, float[] out) {
        long baseA = base;
        long baseB = count > 1 ? base + 1 * tileBytes : base;
        long baseC = count > 2 ? base + 2 * tileBytes : base;
        long baseD = count > 3 ? base + 3 * tileBytes : base;
        IntVector evenA = IntVector.zero(I);
        IntVector oddA = IntVector.zero(I);
        IntVector evenB = IntVector.zero(I);
        IntVector oddB = IntVector.zero(I);
        IntVector evenC = IntVector.zero(I);
        IntVector oddC = IntVector.zero(I);
        IntVector evenD = IntVector.zero(I);
        IntVector oddD = IntVector.zero(I);
        int steps = chunks / 2;
        long secondHalf = tileBytes / 2;
        for (int s0 = 0; s0 < steps; s0 += RUN_STEPS) {
            ShortVector sumA = ShortVector.zero(S);
            ShortVector sumB = ShortVector.zero(S);
            ShortVector sumC = ShortVector.zero(S);
            ShortVector sumD = ShortVector.zero(S);
            int s1 = Math.min(steps, s0 + RUN_STEPS);
            for (int step = s0; step < s1; step++) {
                long at = (long) step * 2 * TILE_ROWS;
                long at2 = at + secondHalf;
                int o = t0 + CHUNK_TABLE * step;
                int o2 = o + CHUNK_TABLE * steps;
                ShortVector ta = ShortVector.fromArray(S, tables, o);
                ShortVector tb = ShortVector.fromArray(S, tables, o + 32);
                ShortVector tc = ShortVector.fromArray(S, tables, o + 64);
                ShortVector ua = ShortVector.fromArray(S, tables, o2);
                ShortVector ub = ShortVector.fromArray(S, tables, o2 + 32);
                ShortVector uc = ShortVector.fromArray(S, tables, o2 + 64);
                IntVector wordsA = IntVector.fromMemorySegment(I, tiles, baseA + at, LE);
                IntVector laterA = IntVector.fromMemorySegment(I, tiles, baseA + at2, LE);
                IntVector wordsB = IntVector.fromMemorySegment(I, tiles, baseB + at, LE);
                IntVector laterB = IntVector.fromMemorySegment(I, tiles, baseB + at2, LE);
                IntVector wordsC = IntVector.fromMemorySegment(I, tiles, baseC + at, LE);
                IntVector laterC = IntVector.fromMemorySegment(I, tiles, baseC + at2, LE);
                IntVector wordsD = IntVector.fromMemorySegment(I, tiles, baseD + at, LE);
                IntVector laterD = IntVector.fromMemorySegment(I, tiles, baseD + at2, LE);
                sumA = sumA.add(wordsA.reinterpretAsShorts().selectFrom(ta))
                        .add(wordsA.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(wordsA.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc))
                        .add(laterA.reinterpretAsShorts().selectFrom(ua))
                        .add(laterA.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(ub))
                        .add(laterA.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(uc));
                sumB = sumB.add(wordsB.reinterpretAsShorts().selectFrom(ta))
                        .add(wordsB.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(wordsB.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc))
                        .add(laterB.reinterpretAsShorts().selectFrom(ua))
                        .add(laterB.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(ub))
                        .add(laterB.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(uc));
                sumC = sumC.add(wordsC.reinterpretAsShorts().selectFrom(ta))
                        .add(wordsC.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(wordsC.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc))
                        .add(laterC.reinterpretAsShorts().selectFrom(ua))
                        .add(laterC.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(ub))
                        .add(laterC.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(uc));
                sumD = sumD.add(wordsD.reinterpretAsShorts().selectFrom(ta))
                        .add(wordsD.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(wordsD.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc))
                        .add(laterD.reinterpretAsShorts().selectFrom(ua))
                        .add(laterD.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(ub))
                        .add(laterD.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(uc));
            }
            IntVector runA = sumA.reinterpretAsInts();
            IntVector runB = sumB.reinterpretAsInts();
            IntVector runC = sumC.reinterpretAsInts();
            IntVector runD = sumD.reinterpretAsInts();
            evenA = evenA.add(runA.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddA = oddA.add(runA.lanewise(VectorOperators.ASHR, 16));
            evenB = evenB.add(runB.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddB = oddB.add(runB.lanewise(VectorOperators.ASHR, 16));
            evenC = evenC.add(runC.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddC = oddC.add(runC.lanewise(VectorOperators.ASHR, 16));
            evenD = evenD.add(runD.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddD = oddD.add(runD.lanewise(VectorOperators.ASHR, 16));
        }
        int half = TILE_ROWS / 2;
        ((FloatVector) evenA.convert(VectorOperators.I2F, 0)).intoArray(out, 0);
        ((FloatVector) oddA.convert(VectorOperators.I2F, 0)).intoArray(out, half);
        ((FloatVector) evenB.convert(VectorOperators.I2F, 0)).intoArray(out, TILE_ROWS);
        ((FloatVector) oddB.convert(VectorOperators.I2F, 0)).intoArray(out, TILE_ROWS + half);
        ((FloatVector) evenC.convert(VectorOperators.I2F, 0)).intoArray(out, 2 * TILE_ROWS);
        ((FloatVector) oddC.convert(VectorOperators.I2F, 0)).intoArray(out, 2 * TILE_ROWS + half);
        ((FloatVector) evenD.convert(VectorOperators.I2F, 0)).intoArray(out, 3 * TILE_ROWS);
        ((FloatVector) oddD.convert(VectorOperators.I2F, 0)).intoArray(out, 3 * TILE_ROWS + half);
    }
}
