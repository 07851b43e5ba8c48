package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
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
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * TERNARY (and BINARY, as codes +-1) x INT8 activations by lookup tables (the T-MAC idea) on rows repacked into
 * tiles, one row per 16-bit lane, so that one table lookup serves a whole tile of rows. TERNARY rows of one scale
 * take {@link Base3TileMatmul}'s tiles instead (fewer bytes and lookups); these serve its groups, BINARY, and F32
 * activations.
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack} from either file layout); R = 32 rows per tile, the 16-bit
 * lanes of a 512-bit vector (the lookups need them: LookupTables#POSSIBLE):
 *   tile t = rows R t .. R t + R - 1, chunk c = values 16c .. 16c+15 (C = ceil(K / 16) chunks per row);
 *   tile t at t C 4R bytes: its mask words, then its sign words. Chunk c's R little-endian u16 mask words at 2R c
 *   bytes into the tile, lane r: bit i set when value 16c+i of row R t + r is not 0; its R u16 sign words at 2R (C
 *   + c), bit i set when it is -1. Rows past N and values past K are 0. A tile's masks and signs are two streams:
 *   with them side by side chunk by chunk (4R bytes a chunk), four tiles a pass read 84-87 G weights/s from DRAM
 *   (4096x14336, 2 threads, an Intel Xeon at 27-29 GB/s), with them apart (eight streams) 90-93; from the planes
 *   layout 79-80 -> 89-92.
 *   BINARY (code 1 - 2 bit) has only the sign words: 2R bytes per chunk.
 * Tables, per token: {@link LookupTables}'s, three per chunk of 16 codes (subset sums of 5, 5 and 6 codes).
 * Per tile and token, R lanes at once: lane r adds its chunk sum (three lookups, LookupTables) of its mask word
 *   and takes twice that of its sign word: code = mask - 2 sign. Lanes wrap at 16 bits, but every run of 16
 *   chunks sums to at most 16 x 16 x 127 = 32512 in magnitude, so each run's sum is exact; runs add in 32-bit
 *   lanes.
 * BINARY: lane r sums the chunk sums of its sign words into S; acc = X - 2 S, X the token's sum of codes. With one
 *   scale a row, where each half of a tile is whole 4 KB pages (C a multiple of 128: K a multiple of 2048), each step
 *   takes chunk i of each tile's first half and chunk (i + 32) mod C/2 of its second, half a page ahead
 *   ({@link #signSumsInHalves}): eight streams of weights a pass, not four
 *   (`bitplane bench --backend java --encodings binary --activations int8`, alternated, G weights/s: 4096x14336
 *   159-170 against 142-154, 14336x4096 160 against 154, 5632x2048 148 against 137; the 418M binary model 200-206
 *   against 185-189 tokens/s). At 11264x1024, whose 2 KB halves share a page, halves read 95 against 132; the tiles
 *   start on a page (TileRows#pageAligned).
 * Tiles go four at a time through one pass over the tables: each table load serves them all, and four streams of
 *   weights are in flight from memory. From DRAM (4096x14336 cycled through 256 MB, 2 threads) pairs took ternary
 *   from 58-77 to 128-137 G weights/s and binary from 125-132 to 185-230; fours took binary (with the three-lookup
 *   tables) from 161-184 to 200-256, one thread from 97-119 to 168-175, and ternary (JMH, 4 copies) from 114-116 to
 *   148-154.
 * The result is the oracle's integer acc = sum of code x q over the row, then y = (0f + (s acc + 0f)) x s_x.
 * Groups (INT8 activations; a multiple of 16 values): the runs stop at each group's end, and each group's exact
 *   sums become the oracle's terms in float lanes, added in group order: y = (((0f + (s_0 acc_0 + 0f)) + ...) x s_x,
 *   with the scales in tile order (float, beside the tiles). Groups of 64 to 256 had gone to kernels 10-40x slower.
 * F32 activations (where vectors have 16 int lanes): the same tiles against float tables of 16 entries, int bits in
 *   int lanes (selectFrom: vpermd); the int lanes' low halves give the even rows, the high halves the odd rows.
 *   y = 0f + s acc with acc = the float sum, in another order than the oracle's (equal within rounding).
 *   Tiles go four at a time here too: from DRAM (4096x14336, 2 threads) pairs read binary at 124-168 G weights/s,
 *   fours at 154-213; ternary (JMH, 4 copies) 88-113 -> 97-155. Ternary's masks and signs go through the same loop
 *   as binary's signs, one pass each ({@link #floatLookups} says why).
 * </pre>
 * Per 16 values of a row's mask or signs this costs three lookups, two shifts and three adds (and the masks C2 puts
 * before each lookup), where {@link PackedTernaryMatmul} multiplies every field. The lookups, {@code selectFrom} on
 * short lanes, are one instruction each (vpermw, vpermi2w) with AVX-512BW, which a preferred vector of 512 bits
 * implies; the backend takes this kernel only there ({@link LookupTables#worthUsing}).
 * The words are shifted as int lanes: C2 compiles a 16-bit lane shift by a constant with its count in a register
 * (vmovd, then vpsrlw by xmm: three uops, two on the port the lookups use), a 32-bit one with an immediate (one),
 * and the bits an int shift brings down from the upper word land above the index bits each lookup reads (C2 masks
 * them off for selectFrom's index wrap anyway). JMH, 4096x14336, from the L3: ternary 1,458-1,461 -> 1,684-1,714
 * calls/s on one thread, 2,492-2,581 -> 2,912-2,924 on two; binary 2,626-2,680 -> 2,634-2,815 and 4,188-4,411 ->
 * 4,607-4,758.
 */
final class SignTileMatmul {
    private SignTileMatmul() {
    }

    private static final VectorSpecies<Short> S = TileRows.S;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, S.vectorShape());
    private static final int TILE_ROWS = TileRows.ROWS;
    private static final int CHUNK_VALUES = LookupTables.CHUNK_VALUES;
    /** Bytes of a tile per chunk: TILE_ROWS mask and TILE_ROWS sign words (apart: class comment); BINARY signs only. */
    private static int chunkBytes(TensorSpec spec) {
        return chunkBytes(spec.encoding() == Encoding.BINARY);
    }

    private static int chunkBytes(boolean binary) {
        return (binary ? 2 : 4) * TILE_ROWS;
    }
    /** Tiles summed in one pass over a token's tables, INT8 or float (see the class comment). */
    private static final int TILES_PER_PASS = 4;
    /** Chunks per run of int16 sums (see the class comment). */
    private static final int RUN_CHUNKS = 16;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);

    /**
     * Tensors this kernel takes: TERNARY in either layout, and BINARY (codes +-1: the mask is every value of the
     * row, the sign its bit); with INT8 activations, one scale per row or groups of whole chunks; with F32
     * activations, one scale per row. TERNARY with INT8 activations and one scale a row is {@link
     * Base3TileMatmul}'s, whose words hold 9 values in 16 bits.
     */
    static boolean supports(TensorSpec spec) {
        Encoding e = spec.encoding();
        ActivationHint a = spec.activations();
        boolean groupsFit = spec.groupsPerRow() == 1
                || a == ActivationHint.INT8 && spec.effectiveGroupSize() % CHUNK_VALUES == 0;
        boolean base3 = e == Encoding.TERNARY && a == ActivationHint.INT8 && spec.groupsPerRow() == 1;
        return (e == Encoding.TERNARY || e == Encoding.BINARY) && !base3
                && (a == ActivationHint.INT8 || a == ActivationHint.F32 && FLOAT_TABLES)
                && spec.rank() == 2 && groupsFit && spec.cols() <= Integer.MAX_VALUE / 16
                && (spec.layout() == TensorSpec.LAYOUT_CANONICAL
                    || e == Encoding.TERNARY && spec.layout() == TensorSpec.LAYOUT_PACKED);
    }

    /**
     * The tiles of a TERNARY or BINARY tensor into new native memory from {@code memory}. Signs are taken only
     * where the mask is set, as the oracle reads them. Costs one pass over the tensor, its rows split over
     * {@code pool}. Null when a packed field is 3: the format reads it as the code 2, which mask and sign bits
     * cannot hold (the writer never writes it; a file that does takes the kernels that read fields directly).
     */
    static MemorySegment repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        long bytes = (long) TileRows.tiles(spec) * LookupTables.chunks(spec) * chunkBytes(spec);
        MemorySegment tiles = TileRows.pageAligned(memory, bytes);
        AtomicBoolean codeTwo = new AtomicBoolean();
        pool.run((int) spec.rows(), (r0, r1) -> {
            if (!repackRows(spec, data, tiles, r0, r1)) {
                codeTwo.set(true);
            }
        });
        return codeTwo.get() ? null : tiles;
    }

    /**
     * The row scales in tile order (TileRows#putF32) for a tensor of several groups a row, in new native memory
     * from {@code memory}; null for one group a row, whose scales the kernel reads from the file.
     */
    static MemorySegment groupScales(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        int groups = (int) spec.groupsPerRow();
        if (groups == 1) {
            return null;
        }
        MemorySegment out = memory.allocate((long) TileRows.tiles(spec) * groups * TILE_ROWS * 4);
        long scalesOffset = spec.scalesOffset();
        pool.run((int) spec.rows(), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                TileRows.putF32(data, scalesOffset, groups, r, out);
            }
        });
        return out;
    }

    /** Repacks rows [r0, r1); false if a packed field among them is 3. */
    private static boolean repackRows(TensorSpec spec, MemorySegment data, MemorySegment tiles, int r0, int r1) {
        long threes = 0;
        int chunks = LookupTables.chunks(spec);
        int chunkBytes = chunkBytes(spec);
        boolean binary = spec.encoding() == Encoding.BINARY;
        long words = spec.wordsPerRow();
        for (int r = r0; r < r1; r++) {
            long tileBase = (long) (r / TILE_ROWS) * chunks * chunkBytes + 2L * (r % TILE_ROWS);
            for (int c = 0; c < chunks; c++) {
                if (binary) {  // one plane of u64 words, bit set for code -1; the signs are the tile
                    long word = data.getAtIndex(U64, r * words + c / 4) >>> CHUNK_VALUES * (c % 4);
                    tiles.set(U16, tileBase + (long) c * chunkBytes, (short) word);
                    continue;
                }
                long bits = ternaryChunk(spec, data, r, c);
                threes |= bits & THREE;
                long at = tileBase + (long) c * 2 * TILE_ROWS;
                tiles.set(U16, at, (short) bits);
                tiles.set(U16, at + (long) chunks * 2 * TILE_ROWS, (short) (bits >>> 16));
            }
        }
        return threes == 0;
    }

    /** The bit {@link #ternaryChunk} sets when a packed field of its chunk is 3. */
    static final long THREE = 1L << 32;

    /**
     * Values 16c .. 16c + 15 of TERNARY row {@code r}, from either layout: bit i (0-15) set when value 16c + i is
     * not 0, bit 16 + i when it is -1 (only where it is not 0, as the oracle reads signs), and {@link #THREE} when a
     * packed field among them is 3 (the code 2, which these bits cannot hold). Values past K are 0.
     */
    static long ternaryChunk(TensorSpec spec, MemorySegment data, long r, int c) {
        int mask;
        int sign;
        if (spec.layout() == TensorSpec.LAYOUT_PACKED) {
            // Chunk c is block c / 8, fields at bits 2s of its bytes 16h .. 16h + 15 (s = c % 8 / 2, h = c % 2):
            // field 0 is code -1, 1 is 0, 2 is +1 (PackedCodes).
            long at = r * PackedCodes.rowBytes(spec) + 32L * (c / 8) + 16L * (c % 2);
            int shift = 2 * (c % 8 / 2);
            long lo = data.get(U64, at) >>> shift;
            long hi = data.get(U64, at + 8) >>> shift;
            if (((lo & lo >>> 1 | hi & hi >>> 1) & LOW_BITS) != 0) {
                return THREE;
            }
            mask = nonZeroFields(lo) | nonZeroFields(hi) << 8;
            sign = negativeFields(lo) | negativeFields(hi) << 8;
        } else {  // planes of u64 words: mask (plane 0), then sign (plane 1)
            long words = spec.wordsPerRow();
            int shift = CHUNK_VALUES * (c % 4);
            mask = (int) (data.getAtIndex(U64, 2L * r * words + c / 4) >>> shift) & 0xffff;
            sign = (int) (data.getAtIndex(U64, (2L * r + 1) * words + c / 4) >>> shift) & mask;
        }
        return mask | (long) sign << 16;
    }

    private static final long LOW_BITS = 0x0101010101010101L;

    /** Bit i set when the 2-bit field in the low bits of byte i is not 1 (code not 0). */
    private static int nonZeroFields(long fields) {
        return (int) Long.compress(fields >>> 1 | ~fields, LOW_BITS);
    }

    /** Bit i set when the 2-bit field in the low bits of byte i is 0 (code -1). */
    private static int negativeFields(long fields) {
        return (int) Long.compress(~(fields | fields >>> 1), LOW_BITS);
    }

    /**
     * F32 activations take float tables (LookupTables#buildFloatTables, as int bits) of 16 entries, one per int lane,
     * so they need vectors of 16 int lanes (512 bits); a tile's 32 rows are then its even and odd rows, the low and
     * high halves of the int lanes.
     */
    static final boolean FLOAT_TABLES = I.length() == 16;

    /**
     * F32 activations: tiles [tile0, tile1) for every token, float tables of token t at {@code tables[t * stride ..]}
     * (LookupTables#floatTableLength), X_t = {@code xSums[t]} (BINARY; null for TERNARY); y = 0f + s * acc, as the
     * oracle forms one group's term, acc = sum of code x x in float (another order than the oracle's, so equal
     * within rounding).
     * Tiles go four at a time, as in {@link #tiles}.
     */
    static void tilesF32(TensorSpec spec, MemorySegment data, MemorySegment tiles, int[] tables, float[] xSums,
                         float[] y, int batch, int tile0, int tile1) {
        int n = (int) spec.rows();
        int chunks = LookupTables.chunks(spec);
        int stride = LookupTables.floatTableLength(spec);
        long scales = spec.scalesOffset();
        boolean binary = spec.encoding() == Encoding.BINARY;
        long tileBytes = (long) chunks * chunkBytes(binary);
        float[] sums = TILE_SUMS.get();
        for (int tile = tile0; tile < tile1; tile += TILES_PER_PASS) {
            int count = Math.min(TILES_PER_PASS, tile1 - tile);
            long base = tile * tileBytes;
            for (int t = 0; t < batch; t++) {
                if (binary) {
                    floatSignSums(tiles, base, tileBytes, count, chunks, tables, t * stride, xSums[t], sums);
                } else {
                    floatSums(tiles, base, tileBytes, count, chunks, tables, t * stride, sums);
                }
                storeTiles(data, scales, sums, 1f, tile, count, n, y, t * n);
            }
        }
    }

    /**
     * TERNARY: the float sums T[mask] - 2 T[sign] of {@code count} (1 to 4) tiles from {@code base}, {@code
     * tileBytes} apart, for one token's float tables at {@code tables[t0 ..]}, into {@code out} tile by tile, each its
     * even rows then its odd rows: the masks' lookups in one pass over the tiles, the signs' in a second (each a
     * stream of its own in memory either way), so that both encodings run one kernel ({@link #floatLookups}).
     */
    private static void floatSums(MemorySegment tiles, long base, long tileBytes, int count, int chunks, int[] tables,
                                  int t0, float[] out) {
        float[] minus = MINUS_SUMS.get();
        floatLookups(tiles, base, tileBytes, count, chunks, tables, t0, out);
        floatLookups(tiles, base + tileBytes / 2, tileBytes, count, chunks, tables, t0, minus);  // the sign words
        for (int i = 0; i < TILES_PER_PASS * TILE_ROWS; i += F.length()) {
            FloatVector m = FloatVector.fromArray(F, minus, i);
            FloatVector.fromArray(F, out, i).sub(m.add(m)).intoArray(out, i);
        }
    }

    /** BINARY: the float sums X - 2 T[sign] of {@code count} (1 to 4) tiles, as {@link #floatSums} orders them. */
    private static void floatSignSums(MemorySegment tiles, long base, long tileBytes, int count, int chunks,
                                      int[] tables, int t0, float x, float[] out) {
        floatLookups(tiles, base, tileBytes, count, chunks, tables, t0, out);
        FloatVector xs = FloatVector.broadcast(F, x);
        for (int i = 0; i < TILES_PER_PASS * TILE_ROWS; i += F.length()) {
            FloatVector s = FloatVector.fromArray(F, out, i);
            xs.sub(s.add(s)).intoArray(out, i);
        }
    }

    /**
     * The float sums T[word] of {@code count} (1 to 4) tiles' words, the first tile's chunk c at {@code base + c 2R}
     * (a stream of mask or sign words), the next tiles {@code tileBytes} apart, for one token's float tables at
     * {@code tables[t0 ..]}, into {@code sums} tile by tile, each its even rows then its odd rows (the missing tiles
     * read the first again, their sums unused). Each lookup picks 16 rows: the even rows from the low halves of the
     * int lanes, the odd rows from the high. Four tiles go at once: each table load serves four tiles, and four
     * streams of weights are in flight.
     * <p>
     * One method for both encodings, so that a process compiles it once. Ternary and binary had a method each (the
     * ternary one summing masks and signs in one loop, 16 sums), and whichever C2 compiled second in a process ran
     * at 5-14 G weights/s against 126-133 (4096x14336, {@code bitplane bench --encodings ternary,binary
     * --activations f32}, either order): JFR showed two vectors allocated on the heap per lookup there. Both loops
     * were near the size at which C2 stops inlining (NodeCountInliningCutoff): the calls after the loop were
     * inlined late, and in the slow compiles by type profile (by exact type in the fast ones), and the sums the
     * loop carried stayed heap objects. Summing in memory instead (a load and a store per lookup) was robust too,
     * but read binary at 111 and ternary at 41-61 against 130 and 68. Ternary in two passes reads as fast as in one.
     */
    private static void floatLookups(MemorySegment tiles, long base, long tileBytes, int count, int chunks,
                                     int[] tables, int t0, float[] sums) {
        long baseA = base;
        long baseB = count > 1 ? base + tileBytes : base;
        long baseC = count > 2 ? base + 2 * tileBytes : base;
        long baseD = count > 3 ? base + 3 * tileBytes : base;
        FloatVector evenA = FloatVector.zero(F);
        FloatVector oddA = FloatVector.zero(F);
        FloatVector evenB = FloatVector.zero(F);
        FloatVector oddB = FloatVector.zero(F);
        FloatVector evenC = FloatVector.zero(F);
        FloatVector oddC = FloatVector.zero(F);
        FloatVector evenD = FloatVector.zero(F);
        FloatVector oddD = FloatVector.zero(F);
        for (int c = 0; c < chunks; c++) {
            long at = (long) c * 2 * TILE_ROWS;
            IntVector wordsA = IntVector.fromMemorySegment(I, tiles, baseA + at, LE);
            IntVector wordsB = IntVector.fromMemorySegment(I, tiles, baseB + at, LE);
            IntVector wordsC = IntVector.fromMemorySegment(I, tiles, baseC + at, LE);
            IntVector wordsD = IntVector.fromMemorySegment(I, tiles, baseD + at, LE);
            // Field j of a lane's even and odd words at bits 4j and 16 + 4j: the words move down 4 bits a field,
            // so that every shift has a constant count (C2 shifts by a count that varies with j through a register:
            // two uops, one on the port of the lookups, and a move of the count).
            for (int j = 0; j < 4; j++) {
                IntVector table = IntVector.fromArray(I, tables, t0 + 16 * (4 * c + j));
                evenA = evenA.add(lookup(wordsA, 0, table));
                oddA = oddA.add(lookup(wordsA, 16, table));
                evenB = evenB.add(lookup(wordsB, 0, table));
                oddB = oddB.add(lookup(wordsB, 16, table));
                evenC = evenC.add(lookup(wordsC, 0, table));
                oddC = oddC.add(lookup(wordsC, 16, table));
                evenD = evenD.add(lookup(wordsD, 0, table));
                oddD = oddD.add(lookup(wordsD, 16, table));
                wordsA = wordsA.lanewise(VectorOperators.LSHR, 4);
                wordsB = wordsB.lanewise(VectorOperators.LSHR, 4);
                wordsC = wordsC.lanewise(VectorOperators.LSHR, 4);
                wordsD = wordsD.lanewise(VectorOperators.LSHR, 4);
            }
        }
        int half = TILE_ROWS / 2;
        evenA.intoArray(sums, 0);
        oddA.intoArray(sums, half);
        evenB.intoArray(sums, TILE_ROWS);
        oddB.intoArray(sums, TILE_ROWS + half);
        evenC.intoArray(sums, 2 * TILE_ROWS);
        oddC.intoArray(sums, 2 * TILE_ROWS + half);
        evenD.intoArray(sums, 3 * TILE_ROWS);
        oddD.intoArray(sums, 3 * TILE_ROWS + half);
    }

    /**
     * The table's entries for the 4-bit fields at bit {@code shift} of the int lanes (16 rows: shift 0-12 the even
     * rows' words, 16-28 the odd rows'). selectFrom wraps each index to its low 4 bits (vpermd reads only those).
     */
    private static FloatVector lookup(IntVector words, int shift, IntVector table) {
        return words.lanewise(VectorOperators.LSHR, shift).selectFrom(table).reinterpretAsFloats();
    }

    /** Per worker thread: the signs' sums of a ternary pass ({@link #floatSums}), as {@link #TILE_SUMS} holds. */
    private static final ThreadLocal<float[]> MINUS_SUMS =
            ThreadLocal.withInitial(() -> new float[TILES_PER_PASS * TILE_ROWS]);

    /**
     * Per worker thread: the sums of a pass's tiles (up to {@link #TILES_PER_PASS}) as floats, tile by tile, each
     * its even rows then its odd rows; the INT8 and the float paths both fill it.
     */
    private static final ThreadLocal<float[]> TILE_SUMS =
            ThreadLocal.withInitial(() -> new float[TILES_PER_PASS * TILE_ROWS]);
    /** Per worker thread: a pass's tiles' sums of group terms, in the order of {@link #TILE_SUMS}. */
    private static final ThreadLocal<float[]> GROUP_TOTALS =
            ThreadLocal.withInitial(() -> new float[TILES_PER_PASS * TILE_ROWS]);

    /**
     * Tiles [tile0, tile1) for every token: tables of token t at {@code tables[t * tableLength ..]}, results at
     * {@code y[t * N + row]}; the row scales are read from the file's bytes {@code data}, or for several groups a
     * row from {@code groupScales} ({@link #groupScales}; BINARY's code sums then per token and group). One scale a
     * row is BINARY's alone here: TERNARY's goes to {@link Base3TileMatmul} ({@link #supports}). Tiles go four at a
     * time (a missing one is the first again, its sums unused): they share each table load, and streaming several
     * tiles keeps more weight loads in flight from DRAM.
     */
    static void tiles(TensorSpec spec, MemorySegment data, MemorySegment tiles, MemorySegment groupScales,
                      short[] tables, int[] codeSums, float[] tokenScales, float[] y, int batch, int tile0,
                      int tile1) {
        if (groupScales != null) {
            groupedTiles(spec, tiles, groupScales, tables, codeSums, tokenScales, y, batch, tile0, tile1);
            return;
        }
        int n = (int) spec.rows();
        int chunks = LookupTables.chunks(spec);
        int stride = LookupTables.tableLength(spec);
        long scales = spec.scalesOffset();
        long tileBytes = (long) chunks * chunkBytes(spec);
        boolean halves = inHalves(chunks);
        float[] sums = TILE_SUMS.get();
        for (int tile = tile0; tile < tile1; tile += TILES_PER_PASS) {
            int count = Math.min(TILES_PER_PASS, tile1 - tile);
            long base = tile * tileBytes;
            for (int t = 0; t < batch; t++) {
                if (halves) {
                    signSumsInHalves(tiles, base, tileBytes, count, chunks, tables, t * stride, codeSums[t], sums);
                } else {
                    signSums(tiles, base, tileBytes, count, 0, chunks, tables, t * stride, codeSums[t], sums);
                }
                storeTiles(data, scales, sums, tokenScales[t], tile, count, n, y, t * n);
            }
        }
    }

    /** {@link #tiles} for several groups a row (see the class comment). */
    private static void groupedTiles(TensorSpec spec, MemorySegment tiles, MemorySegment groupScales, short[] tables,
                                     int[] codeSums, float[] tokenScales, float[] y, int batch, int tile0,
                                     int tile1) {
        int n = (int) spec.rows();
        int chunks = LookupTables.chunks(spec);
        int stride = LookupTables.tableLength(spec);
        int groups = (int) spec.groupsPerRow();
        int groupChunks = (int) (spec.effectiveGroupSize() / CHUNK_VALUES);
        boolean binary = spec.encoding() == Encoding.BINARY;
        long tileBytes = (long) chunks * chunkBytes(spec);
        float[] sums = TILE_SUMS.get();
        float[] totals = GROUP_TOTALS.get();
        for (int tile = tile0; tile < tile1; tile += TILES_PER_PASS) {
            int count = Math.min(TILES_PER_PASS, tile1 - tile);
            long base = tile * tileBytes;
            for (int t = 0; t < batch; t++) {
                Arrays.fill(totals, 0f);
                for (int g = 0; g < groups; g++) {
                    int c0 = g * groupChunks;
                    int c1 = Math.min(chunks, c0 + groupChunks);
                    if (binary) {
                        signSums(tiles, base, tileBytes, count, c0, c1, tables, t * stride, codeSums[t * groups + g],
                                sums);
                    } else {
                        tileSums(tiles, base, tileBytes, count, c0, c1, tables, t * stride, sums);
                    }
                    for (int h = 0; h < count; h++) {
                        addTerms(groupScales, ((long) (tile + h) * groups + g) * TILE_ROWS * 4, sums, totals,
                                h * TILE_ROWS);
                    }
                }
                for (int slot = 0; slot < count * TILE_ROWS; slot++) {
                    int r = (tile + slot / TILE_ROWS) * TILE_ROWS + TileRows.row(slot % TILE_ROWS);
                    if (r < n) {
                        y[t * n + r] = totals[slot] * tokenScales[t];
                    }
                }
            }
        }
    }

    /**
     * totals[at + i] += s_i x sums[at + i] + 0f for one tile's rows (the oracle's term of one group, added in group
     * order), its scales at byte {@code scalesAt} of {@code groupScales}: elementwise, so exactly the oracle's floats.
     */
    private static void addTerms(MemorySegment groupScales, long scalesAt, float[] sums, float[] totals, int at) {
        for (int i = 0; i < TILE_ROWS; i += F.length()) {
            FloatVector s = FloatVector.fromMemorySegment(F, groupScales, scalesAt + 4L * i, LE);
            FloatVector term = s.mul(FloatVector.fromArray(F, sums, at + i)).add(0f);
            FloatVector.fromArray(F, totals, at + i).add(term).intoArray(totals, at + i);
        }
    }

    /**
     * Results of {@code count} tiles from {@code tile} for one token, from their sums (tile by tile, each its even
     * rows, then its odd rows): y[yo + r] = (0f + (s_r acc + 0f)) x tokenScale for the rows below {@code n}, the
     * oracle's one group term times the token's scale (1 for F32 activations, where the oracle has none).
     */
    static void storeTiles(MemorySegment data, long scales, float[] sums, float tokenScale, int tile, int count,
                           int n, float[] y, int yo) {
        for (int slot = 0; slot < count * TILE_ROWS; slot++) {
            int r = (tile + slot / TILE_ROWS) * TILE_ROWS + TileRows.row(slot % TILE_ROWS);
            if (r < n) {
                float s = Halfs.f16ToFloat(data.get(PanamaBackend.SHORT, scales + 2L * r));
                y[yo + r] = (0f + (s * sums[slot] + 0f)) * tokenScale;
            }
        }
    }

    /**
     * TERNARY: the exact sums of {@code count} (1 to 4) tiles from {@code base}, {@code tileBytes} apart, over chunks
     * [from, to) for one token's tables at {@code tables[t0 ..]}, converted to float as the oracle's s x acc converts
     * acc, into {@code out} tile by tile, each its even rows then its odd rows. The missing tiles read the first
     * again, their sums unused.
     */
    private static void tileSums(MemorySegment tiles, long base, long tileBytes, int count, int from, int to,
                                 short[] tables, int t0, float[] out) {
        long baseA = base;
        long baseB = count > 1 ? base + tileBytes : base;
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
        long signs = tileBytes / 2;  // a tile's sign words follow its mask words
        for (int c0 = from; c0 < to; c0 += RUN_CHUNKS) {
            ShortVector plusA = ShortVector.zero(S);
            ShortVector minusA = ShortVector.zero(S);
            ShortVector plusB = ShortVector.zero(S);
            ShortVector minusB = ShortVector.zero(S);
            ShortVector plusC = ShortVector.zero(S);
            ShortVector minusC = ShortVector.zero(S);
            ShortVector plusD = ShortVector.zero(S);
            ShortVector minusD = ShortVector.zero(S);
            int c1 = Math.min(to, c0 + RUN_CHUNKS);
            for (int c = c0; c < c1; c++) {
                long at = (long) c * 2 * TILE_ROWS;
                long sat = signs + at;
                int o = t0 + LookupTables.CHUNK_TABLE * c;
                ShortVector ta = ShortVector.fromArray(S, tables, o); // codes 0-4 of the chunk
                ShortVector tb = ShortVector.fromArray(S, tables, o + 32); // codes 5-9
                ShortVector tc = ShortVector.fromArray(S, tables, o + 64); // codes 10-15, in two vectors
                ShortVector td = ShortVector.fromArray(S, tables, o + 96);
                IntVector maskA = IntVector.fromMemorySegment(I, tiles, baseA + at, LE);
                IntVector signA = IntVector.fromMemorySegment(I, tiles, baseA + sat, LE);
                plusA = plusA.add(maskA.reinterpretAsShorts().selectFrom(ta))
                        .add(maskA.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(maskA.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                minusA = minusA.add(signA.reinterpretAsShorts().selectFrom(ta))
                        .add(signA.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signA.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                IntVector maskB = IntVector.fromMemorySegment(I, tiles, baseB + at, LE);
                IntVector signB = IntVector.fromMemorySegment(I, tiles, baseB + sat, LE);
                plusB = plusB.add(maskB.reinterpretAsShorts().selectFrom(ta))
                        .add(maskB.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(maskB.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                minusB = minusB.add(signB.reinterpretAsShorts().selectFrom(ta))
                        .add(signB.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signB.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                IntVector maskC = IntVector.fromMemorySegment(I, tiles, baseC + at, LE);
                IntVector signC = IntVector.fromMemorySegment(I, tiles, baseC + sat, LE);
                plusC = plusC.add(maskC.reinterpretAsShorts().selectFrom(ta))
                        .add(maskC.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(maskC.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                minusC = minusC.add(signC.reinterpretAsShorts().selectFrom(ta))
                        .add(signC.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signC.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                IntVector maskD = IntVector.fromMemorySegment(I, tiles, baseD + at, LE);
                IntVector signD = IntVector.fromMemorySegment(I, tiles, baseD + sat, LE);
                plusD = plusD.add(maskD.reinterpretAsShorts().selectFrom(ta))
                        .add(maskD.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(maskD.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                minusD = minusD.add(signD.reinterpretAsShorts().selectFrom(ta))
                        .add(signD.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signD.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
            }
            // Exact as a whole although either part may have wrapped: the run's true sum fits in 16 bits.
            IntVector runA = plusA.sub(minusA.add(minusA)).reinterpretAsInts();
            evenA = evenA.add(runA.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddA = oddA.add(runA.lanewise(VectorOperators.ASHR, 16));
            IntVector runB = plusB.sub(minusB.add(minusB)).reinterpretAsInts();
            evenB = evenB.add(runB.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddB = oddB.add(runB.lanewise(VectorOperators.ASHR, 16));
            IntVector runC = plusC.sub(minusC.add(minusC)).reinterpretAsInts();
            evenC = evenC.add(runC.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddC = oddC.add(runC.lanewise(VectorOperators.ASHR, 16));
            IntVector runD = plusD.sub(minusD.add(minusD)).reinterpretAsInts();
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

    /**
     * Whether BINARY tiles of {@code chunks} chunks a row go through {@link #signSumsInHalves}: where each half of a
     * tile is whole 4 KB pages (64 chunks of 64 bytes), so that its two streams start on pages (see the class
     * comment).
     */
    private static boolean inHalves(int chunks) {
        return chunks % (2 * TileRows.PAGE / (2 * TILE_ROWS)) == 0;
    }

    /**
     * Chunks by which the second half's stream runs ahead of the first's: half a page, so that a tile's two streams,
     * which start at one offset in their pages (each half is whole pages), cross their pages' ends apart (the
     * hardware prefetchers stop at a page's end). `bitplane bench --backend java --activations int8 --encodings
     * binary`, two threads, alternated, G weights/s: 4096x14336 177.6-181.4 -> 183.9-195.5 (three rounds), 5632x2048
     * 119.9-132.5 -> 136.6-142.2, 14336x4096 level (146.3-154.9 against 148.0); a quarter or three quarters of a page
     * read alike. The INT8 tiles gained from the same (Int8TileMatmul#tileStride).
     */
    private static final int PHASE = TileRows.PAGE / 2 / (2 * TILE_ROWS);

    /**
     * {@link #signSums} over a whole row in halves: step i takes chunk i of each tile's first half and chunk (i +
     * PHASE) mod H of its second (H = chunks / 2), eight streams of weights in flight where one a tile gives four.
     * Each step adds two chunks, so runs are half as many steps (a run's 16 chunks sum exactly in any order).
     */
    private static void signSumsInHalves(MemorySegment tiles, long base, long tileBytes, int count, int chunks,
                                         short[] tables, int t0, int codeSum, float[] out) {
        long baseA = base;
        long baseB = count > 1 ? base + tileBytes : base;
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
        long second = (long) steps * 2 * TILE_ROWS;
        int secondTables = LookupTables.CHUNK_TABLE * steps;
        for (int s0 = 0; s0 < steps; s0 += RUN_CHUNKS / 2) {
            ShortVector signsA = ShortVector.zero(S);
            ShortVector signsB = ShortVector.zero(S);
            ShortVector signsC = ShortVector.zero(S);
            ShortVector signsD = ShortVector.zero(S);
            int s1 = Math.min(steps, s0 + RUN_CHUNKS / 2);
            for (int c = s0; c < s1; c++) {
                long at = (long) c * 2 * TILE_ROWS;
                int o = t0 + LookupTables.CHUNK_TABLE * c;
                int c2 = c + PHASE < steps ? c + PHASE : c + PHASE - steps;
                long at2 = (long) c2 * 2 * TILE_ROWS;
                int o2 = t0 + LookupTables.CHUNK_TABLE * c2 + secondTables;
                ShortVector ta = ShortVector.fromArray(S, tables, o);
                ShortVector tb = ShortVector.fromArray(S, tables, o + 32);
                ShortVector tc = ShortVector.fromArray(S, tables, o + 64);
                ShortVector td = ShortVector.fromArray(S, tables, o + 96);
                ShortVector ua = ShortVector.fromArray(S, tables, o2);
                ShortVector ub = ShortVector.fromArray(S, tables, o2 + 32);
                ShortVector uc = ShortVector.fromArray(S, tables, o2 + 64);
                ShortVector ud = ShortVector.fromArray(S, tables, o2 + 96);
                IntVector signA = IntVector.fromMemorySegment(I, tiles, baseA + at, LE);
                IntVector laterA = IntVector.fromMemorySegment(I, tiles, baseA + second + at2, LE);
                IntVector signB = IntVector.fromMemorySegment(I, tiles, baseB + at, LE);
                IntVector laterB = IntVector.fromMemorySegment(I, tiles, baseB + second + at2, LE);
                IntVector signC = IntVector.fromMemorySegment(I, tiles, baseC + at, LE);
                IntVector laterC = IntVector.fromMemorySegment(I, tiles, baseC + second + at2, LE);
                IntVector signD = IntVector.fromMemorySegment(I, tiles, baseD + at, LE);
                IntVector laterD = IntVector.fromMemorySegment(I, tiles, baseD + second + at2, LE);
                signsA = signsA.add(signA.reinterpretAsShorts().selectFrom(ta))
                        .add(signA.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signA.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td))
                        .add(laterA.reinterpretAsShorts().selectFrom(ua))
                        .add(laterA.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(ub))
                        .add(laterA.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(uc, ud));
                signsB = signsB.add(signB.reinterpretAsShorts().selectFrom(ta))
                        .add(signB.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signB.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td))
                        .add(laterB.reinterpretAsShorts().selectFrom(ua))
                        .add(laterB.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(ub))
                        .add(laterB.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(uc, ud));
                signsC = signsC.add(signC.reinterpretAsShorts().selectFrom(ta))
                        .add(signC.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signC.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td))
                        .add(laterC.reinterpretAsShorts().selectFrom(ua))
                        .add(laterC.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(ub))
                        .add(laterC.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(uc, ud));
                signsD = signsD.add(signD.reinterpretAsShorts().selectFrom(ta))
                        .add(signD.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signD.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td))
                        .add(laterD.reinterpretAsShorts().selectFrom(ua))
                        .add(laterD.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(ub))
                        .add(laterD.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(uc, ud));
            }
            IntVector runA = signsA.reinterpretAsInts();
            evenA = evenA.add(runA.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddA = oddA.add(runA.lanewise(VectorOperators.ASHR, 16));
            IntVector runB = signsB.reinterpretAsInts();
            evenB = evenB.add(runB.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddB = oddB.add(runB.lanewise(VectorOperators.ASHR, 16));
            IntVector runC = signsC.reinterpretAsInts();
            evenC = evenC.add(runC.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddC = oddC.add(runC.lanewise(VectorOperators.ASHR, 16));
            IntVector runD = signsD.reinterpretAsInts();
            evenD = evenD.add(runD.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddD = oddD.add(runD.lanewise(VectorOperators.ASHR, 16));
        }
        IntVector x = IntVector.broadcast(I, codeSum);
        int half = TILE_ROWS / 2;
        ((FloatVector) x.sub(evenA.add(evenA)).convert(VectorOperators.I2F, 0)).intoArray(out, 0);
        ((FloatVector) x.sub(oddA.add(oddA)).convert(VectorOperators.I2F, 0)).intoArray(out, half);
        ((FloatVector) x.sub(evenB.add(evenB)).convert(VectorOperators.I2F, 0)).intoArray(out, TILE_ROWS);
        ((FloatVector) x.sub(oddB.add(oddB)).convert(VectorOperators.I2F, 0)).intoArray(out, TILE_ROWS + half);
        ((FloatVector) x.sub(evenC.add(evenC)).convert(VectorOperators.I2F, 0)).intoArray(out, 2 * TILE_ROWS);
        ((FloatVector) x.sub(oddC.add(oddC)).convert(VectorOperators.I2F, 0)).intoArray(out, 2 * TILE_ROWS + half);
        ((FloatVector) x.sub(evenD.add(evenD)).convert(VectorOperators.I2F, 0)).intoArray(out, 3 * TILE_ROWS);
        ((FloatVector) x.sub(oddD.add(oddD)).convert(VectorOperators.I2F, 0)).intoArray(out, 3 * TILE_ROWS + half);
    }

    /**
     * BINARY: the exact sums {@code X - 2 S} of {@code count} (1 to 4) tiles from {@code base}, {@code tileBytes}
     * apart, over chunks [from, to) for one token, S over each row's set sign bits and X the sum of the token's codes
     * there ({@code codeSum}), into {@code out} tile by tile as {@link #tileSums} orders a tile's rows. Four tiles go
     * at once (the missing ones read the first again, their sums unused): binary has one word a row, so four tiles'
     * sums fit the registers, and four streams of weights are in flight where two read 14 GB/s a thread.
     */
    private static void signSums(MemorySegment tiles, long base, long tileBytes, int count, int from, int to,
                                 short[] tables, int t0, int codeSum, float[] out) {
        long baseA = base;
        long baseB = count > 1 ? base + tileBytes : base;
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
        for (int c0 = from; c0 < to; c0 += RUN_CHUNKS) {
            ShortVector signsA = ShortVector.zero(S);
            ShortVector signsB = ShortVector.zero(S);
            ShortVector signsC = ShortVector.zero(S);
            ShortVector signsD = ShortVector.zero(S);
            int c1 = Math.min(to, c0 + RUN_CHUNKS);
            for (int c = c0; c < c1; c++) {
                long at = (long) c * 2 * TILE_ROWS;
                IntVector signA = IntVector.fromMemorySegment(I, tiles, baseA + at, LE);
                IntVector signB = IntVector.fromMemorySegment(I, tiles, baseB + at, LE);
                IntVector signC = IntVector.fromMemorySegment(I, tiles, baseC + at, LE);
                IntVector signD = IntVector.fromMemorySegment(I, tiles, baseD + at, LE);
                int o = t0 + LookupTables.CHUNK_TABLE * c;
                ShortVector ta = ShortVector.fromArray(S, tables, o); // codes 0-4 of the chunk
                ShortVector tb = ShortVector.fromArray(S, tables, o + 32); // codes 5-9
                ShortVector tc = ShortVector.fromArray(S, tables, o + 64); // codes 10-15, in two vectors
                ShortVector td = ShortVector.fromArray(S, tables, o + 96);
                signsA = signsA.add(signA.reinterpretAsShorts().selectFrom(ta))
                        .add(signA.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signA.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                signsB = signsB.add(signB.reinterpretAsShorts().selectFrom(ta))
                        .add(signB.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signB.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                signsC = signsC.add(signC.reinterpretAsShorts().selectFrom(ta))
                        .add(signC.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signC.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
                signsD = signsD.add(signD.reinterpretAsShorts().selectFrom(ta))
                        .add(signD.lanewise(VectorOperators.LSHR, 5).reinterpretAsShorts().selectFrom(tb))
                        .add(signD.lanewise(VectorOperators.LSHR, 10).reinterpretAsShorts().selectFrom(tc, td));
            }
            IntVector runA = signsA.reinterpretAsInts();
            IntVector runB = signsB.reinterpretAsInts();
            IntVector runC = signsC.reinterpretAsInts();
            IntVector runD = signsD.reinterpretAsInts();
            evenA = evenA.add(runA.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddA = oddA.add(runA.lanewise(VectorOperators.ASHR, 16));
            evenB = evenB.add(runB.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddB = oddB.add(runB.lanewise(VectorOperators.ASHR, 16));
            evenC = evenC.add(runC.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddC = oddC.add(runC.lanewise(VectorOperators.ASHR, 16));
            evenD = evenD.add(runD.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            oddD = oddD.add(runD.lanewise(VectorOperators.ASHR, 16));
        }
        IntVector x = IntVector.broadcast(I, codeSum);
        int half = TILE_ROWS / 2;
        ((FloatVector) x.sub(evenA.add(evenA)).convert(VectorOperators.I2F, 0)).intoArray(out, 0);
        ((FloatVector) x.sub(oddA.add(oddA)).convert(VectorOperators.I2F, 0)).intoArray(out, half);
        ((FloatVector) x.sub(evenB.add(evenB)).convert(VectorOperators.I2F, 0)).intoArray(out, TILE_ROWS);
        ((FloatVector) x.sub(oddB.add(oddB)).convert(VectorOperators.I2F, 0)).intoArray(out, TILE_ROWS + half);
        ((FloatVector) x.sub(evenC.add(evenC)).convert(VectorOperators.I2F, 0)).intoArray(out, 2 * TILE_ROWS);
        ((FloatVector) x.sub(oddC.add(oddC)).convert(VectorOperators.I2F, 0)).intoArray(out, 2 * TILE_ROWS + half);
        ((FloatVector) x.sub(evenD.add(evenD)).convert(VectorOperators.I2F, 0)).intoArray(out, 3 * TILE_ROWS);
        ((FloatVector) x.sub(oddD.add(oddD)).convert(VectorOperators.I2F, 0)).intoArray(out, 3 * TILE_ROWS + half);
    }
}
