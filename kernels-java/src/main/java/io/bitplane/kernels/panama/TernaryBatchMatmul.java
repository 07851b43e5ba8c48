package io.bitplane.kernels.panama;

import io.bitplane.format.Halfs;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * TERNARY in packed codes (layout 1) x INT8 activations for a batch of tokens, with the tokens in the lanes, for
 * machines without vpermw (AVX2). There {@link PackedTernaryMatmul} takes a batch token by token, each token paying
 * what a lone token pays (a shift, a multiply and an add per 16 values), so a batch of 32 read 0.75-0.95x one token's
 * weights/s. Here one table lookup adds the products of a byte of a row (four codes) with 32 tokens at once: per
 * 128 values of a row and 32 tokens, 32 lookups, each an index taken from the weight bytes and two 16-lane adds.
 * (The T-MAC idea turned around: SignTileMatmul's tables are over a token's codes with the rows in the lanes; these
 * are over a byte's four codes with the tokens in the lanes.) JMH MatmulBenchmark, ternary packed x int8, 4096 x
 * 4096 in 4 copies, 2 threads, -XX:UseAVX=2, calls/s, token by token -> this (alternated twice): batch 20 189-193 ->
 * 267-271, batch 32 119-151 -> 220-239 (one token: 5,062-5,115, so 1.4-1.5x its weights/s), batch 64 76 -> 110;
 * the 418M ternary model's prompts (`bitplane bench`) 161-184 -> 255-261 tokens/s. Where the lookup tiles run
 * (AVX-512) they stay: their batches of 32 read 479 calls/s, this kernel's 512-bit form 308-441 (a probe).
 *
 * <pre>
 * Weights: the file's packed codes (PackedCodes): row r at r * rowBytes, blocks of 32 bytes and 128 values; byte j of
 *   block b holds the fields (code + 1) of values 128 b + j + 32 i, i = 0 .. 3, in bits 2i .. 2i + 1. A field of 3
 *   reads as the code 2, as the format says (the writer never writes it).
 * Tokens: in groups of G = 32, the last padded with tokens whose codes are 0; the caller transposes each group
 *   ({@link #transpose}): code of value v of token t at (g P + v) G + t % G, g = t / G, P = K padded to whole blocks
 *   (codes past K are 0).
 * Tables (per thread, native memory, 64-byte aligned), rebuilt for every block of every group: entry e of byte j at
 *   (256 j + e) G int16, lane t = sum_i (field_i(e) - 1) q_t(128 b + j + 32 i), every token's products with the four
 *   codes that byte value e stands for (16 KB a byte, 512 KB a block).
 * Per row and block: 32 lookups (one per byte, two 16-lane vectors each) add up in int16 lanes; a block's sum is at
 *   most 32 x 4 x 2 x 127 = 32512 in magnitude, so exact; each block's sums then widen into the token's int32 sum.
 * Result: acc = sum of code x q over the row, exact; y = (0f + (s acc + 0f)) x s_x, the oracle's float steps, so
 *   results equal the oracle's (and the one-token kernel's) bit for bit, whatever the batch.
 * </pre>
 * The vectors are 256 bits at every width from 256 up: on AVX-512 (where the lookup tiles serve ternary anyway) two
 * 256-bit adds cost what one 512-bit add does on this machine's cores, and one table layout serves both widths.
 */
final class TernaryBatchMatmul {
    private TernaryBatchMatmul() {
    }

    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    /** Tokens per group: two vectors of 16 lanes, one table entry. */
    static final int GROUP = 32;
    private static final int BLOCK_VALUES = 128;
    private static final int BLOCK_BYTES = 32;
    /** Bytes of a table entry (G int16 lanes) and of one byte's table (256 entries). */
    private static final int ENTRY_BYTES = 2 * GROUP;
    private static final int BYTE_TABLE = 256 * ENTRY_BYTES;
    /**
     * The smallest batch that takes this kernel; smaller ones take PackedTernaryMatmul token by token. A group costs
     * the same here whatever its tokens, about what 16 tokens cost token by token (JMH as above, batch 16: 238-291
     * calls/s token by token, 292-365 here; batch 12 token by token 297-319).
     */
    static final int MIN_BATCH = 16;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);

    /**
     * Packed TERNARY with INT8 activations and one scale per row, where vectors have 256 bits or more (at 128 bits
     * the 256-bit vectors here would run as objects).
     */
    static boolean supports(TensorSpec spec) {
        return PackedTernaryMatmul.supports(spec) && ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 256;
    }

    /** Whether a batch of {@code batch} tokens takes this kernel. */
    static boolean takes(TensorSpec spec, int batch) {
        return batch >= MIN_BATCH && supports(spec);
    }

    /** Groups of tokens in a batch. */
    static int groups(int batch) {
        return (batch + GROUP - 1) / GROUP;
    }

    /** Length of the transposed codes of a batch. */
    static int transposedLength(TensorSpec spec, int batch) {
        return groups(batch) * PackedTernaryMatmul.paddedK(spec) * GROUP;
    }

    /** Every token's codes ({@code q}, token t at t K) into {@code out} in the order the class comment gives. */
    static void transpose(TensorSpec spec, short[] q, int batch, short[] out) {
        int k = (int) spec.cols();
        int padded = PackedTernaryMatmul.paddedK(spec);
        Arrays.fill(out, 0, transposedLength(spec, batch), (short) 0);
        for (int t = 0; t < batch; t++) {
            int at = t / GROUP * padded * GROUP + t % GROUP;
            for (int v = 0; v < k; v++) {
                out[at + v * GROUP] = q[t * k + v];
            }
        }
    }

    /** Per worker thread: one block's tables and the rows' int32 sums for one group. */
    private static final class Scratch {
        final MemorySegment tables = Arena.ofAuto().allocate((long) BLOCK_BYTES * BYTE_TABLE, 64);
        int[] acc = new int[0];

        Scratch grow(int rows) {
            if (acc.length < rows * GROUP) {
                acc = new int[rows * GROUP];
            }
            return this;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * Rows [r0, r1) for every token: codes {@link #transpose}d, token t's scale at {@code tokenScales[t]}, results
     * at {@code y[t * N + row]}.
     */
    static void rows(TensorSpec spec, MemorySegment w, short[] codes, float[] tokenScales, float[] y, int batch,
                     int r0, int r1) {
        int n = (int) spec.rows();
        int blocks = PackedTernaryMatmul.chunks(spec);
        int padded = blocks * BLOCK_VALUES;
        long rowBytes = PackedCodes.rowBytes(spec);
        long scales = spec.scalesOffset();  // computed once: it walks the tensor's shape
        Scratch s = SCRATCH.get().grow(r1 - r0);
        for (int g = 0; g < groups(batch); g++) {
            Arrays.fill(s.acc, 0, (r1 - r0) * GROUP, 0);
            for (int b = 0; b < blocks; b++) {
                build(codes, (g * padded + b * BLOCK_VALUES) * GROUP, s.tables);
                addBlock(w, rowBytes, b, s.tables, s.acc, r0, r1);
            }
            int tokens = Math.min(GROUP, batch - g * GROUP);
            for (int r = r0; r < r1; r++) {
                float scale = Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, scales + 2L * r));
                for (int t = 0; t < tokens; t++) {
                    int token = g * GROUP + t;
                    int acc = s.acc[(r - r0) * GROUP + t];
                    y[token * n + r] = (0f + (scale * acc + 0f)) * tokenScales[token];
                }
            }
        }
    }

    /**
     * One block's tables for one group, from its codes at {@code codes[c0 ..]} (value 128 b + v of token t at
     * c0 + v G + t). Entry e = f0 + 4 f1 + 16 f2 + 64 f3 is built from entry e - f0's partial sum, one add each.
     */
    private static void build(short[] codes, int c0, MemorySegment tables) {
        for (int j = 0; j < BLOCK_BYTES; j++) {
            for (int half = 0; half < GROUP; half += S.length()) {
                int c = c0 + j * GROUP + half;
                ShortVector x0 = ShortVector.fromArray(S, codes, c);
                ShortVector x1 = ShortVector.fromArray(S, codes, c + 32 * GROUP);
                ShortVector x2 = ShortVector.fromArray(S, codes, c + 64 * GROUP);
                ShortVector x3 = ShortVector.fromArray(S, codes, c + 96 * GROUP);
                ShortVector minus0 = x0.neg();
                ShortVector twice0 = x0.add(x0);
                long e = (long) j * BYTE_TABLE + 2L * half;
                // Field f is the code f - 1: each sum starts at the code -1 and adds its value once per field.
                ShortVector s3 = x3.neg();
                for (int f3 = 0; f3 < 4; f3++, s3 = s3.add(x3)) {
                    ShortVector s2 = s3.sub(x2);
                    for (int f2 = 0; f2 < 4; f2++, s2 = s2.add(x2)) {
                        ShortVector s1 = s2.sub(x1);
                        for (int f1 = 0; f1 < 4; f1++, s1 = s1.add(x1)) {
                            s1.add(minus0).intoMemorySegment(tables, e, LE);
                            s1.intoMemorySegment(tables, e + ENTRY_BYTES, LE);
                            s1.add(x0).intoMemorySegment(tables, e + 2 * ENTRY_BYTES, LE);
                            s1.add(twice0).intoMemorySegment(tables, e + 3 * ENTRY_BYTES, LE);
                            e += 4 * ENTRY_BYTES;
                        }
                    }
                }
            }
        }
    }

    /**
     * Adds block {@code b} of rows [r0, r1) into their int32 sums: per row, eight bytes read at once and each looked
     * up (the lookups written out: a loop over the eight shifts is what C2 compiled to half the speed in
     * PackedTernaryMatmul).
     */
    private static void addBlock(MemorySegment w, long rowBytes, int b, MemorySegment tables, int[] acc, int r0,
                                 int r1) {
        for (int r = r0; r < r1; r++) {
            long at = r * rowBytes + (long) b * BLOCK_BYTES;
            ShortVector lo = ShortVector.zero(S);  // tokens 0-15
            ShortVector hi = lo;                   // tokens 16-31
            for (int j = 0; j < BLOCK_BYTES; j += 8) {
                long bytes = w.get(U64, at + j);
                long e = (long) j * BYTE_TABLE + (bytes & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + 32, LE));
                e = (j + 1L) * BYTE_TABLE + (bytes >>> 8 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + 32, LE));
                e = (j + 2L) * BYTE_TABLE + (bytes >>> 16 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + 32, LE));
                e = (j + 3L) * BYTE_TABLE + (bytes >>> 24 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + 32, LE));
                e = (j + 4L) * BYTE_TABLE + (bytes >>> 32 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + 32, LE));
                e = (j + 5L) * BYTE_TABLE + (bytes >>> 40 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + 32, LE));
                e = (j + 6L) * BYTE_TABLE + (bytes >>> 48 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + 32, LE));
                e = (j + 7L) * BYTE_TABLE + (bytes >>> 56) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + 32, LE));
            }
            int o = (r - r0) * GROUP;
            IntVector.fromArray(I, acc, o).add(lo.convertShape(VectorOperators.S2I, I, 0)).intoArray(acc, o);
            IntVector.fromArray(I, acc, o + 8).add(lo.convertShape(VectorOperators.S2I, I, 1)).intoArray(acc, o + 8);
            IntVector.fromArray(I, acc, o + 16).add(hi.convertShape(VectorOperators.S2I, I, 0)).intoArray(acc, o + 16);
            IntVector.fromArray(I, acc, o + 24).add(hi.convertShape(VectorOperators.S2I, I, 1)).intoArray(acc, o + 24);
        }
    }
}
