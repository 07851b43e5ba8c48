package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.FloatVector;
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
 * TERNARY (packed codes or bit planes) and BINARY x INT8 activations for a batch of tokens, with the tokens in the
 * lanes, for machines without vpermw (AVX2, NEON). There {@link PackedTernaryMatmul}, {@link ByteTableMatmul} and
 * {@link NibbleTileMatmul} (ternary in groups, and binary at 128 bits) take a batch token by token, each token
 * paying what a lone token pays, so a batch of 32 read 0.75-0.98x one token's weights/s. Here one table lookup adds
 * the products of a byte of a row (four packed ternary codes, or eight values of a plane) with a group of 32 tokens
 * at once: per 32 bytes of a row and 32 tokens, 32 lookups, each an index taken from the weight bytes and two
 * 16-lane adds. (The T-MAC idea
 * turned around: SignTileMatmul's tables are over a token's codes with the rows in the lanes; these are over a
 * byte's codes with the tokens in the lanes.)
 * <p>
 * JMH MatmulBenchmark, 4096 x 4096 in 4 copies, 2 threads, calls/s, token by token -> this, alternated:
 * -XX:UseAVX=2, ternary packed x int8: batch 16 210-291 -> 292-365, batch 20 189-193 -> 267-271, batch 32 113-156
 * -> 220-312 (one token 3,864-5,115: 1.4-2.0x its weights/s), batch 64 76 -> 110; binary planes x int8, batch 32
 * 193-252 -> 352-516 (one token 6,910-8,522: 1.5-2.2x). `bitplane bench` prompts of the 418M models: ternary
 * 161-184 -> 255-261 tokens/s, binary (its output projection INT8) 323-334 -> 422-547. At 128-bit vectors (NEON's
 * width; -XX:MaxVectorSize=16 here; groups of 16 tokens): ternary batch 16 123-166 -> 375-380, batch 32 71-87 ->
 * 187-192 (one token 2,093-2,768); binary batch 16 111-162 -> 556-740, batch 32 44-71 -> 266-376 (one token
 * 1,910-2,714). Ternary planes in TQ2_0's groups of 256 (the nibble tiles token by token before), batch 32:
 * -XX:UseAVX=2 144-153 -> 295-305 (one token 4,167-4,534: 2.0-2.1x), 128 bits 51-54 -> 140-144; the 418M model
 * (`synth --weights ternary@256`) prompts 135-219 -> 129-385 tokens/s: 1.6-1.8x, but some runs no faster than
 * before (docs/PERFORMANCE.md). Where the lookup tiles run (AVX-512) they stay:
 * their batches of 32 read 479 calls/s for ternary (this kernel's 512-bit form, a probe: 308-441) and 528-551 for
 * binary (this kernel: 379-432).
 *
 * <pre>
 * Weights, the file's bytes: row r at r * rowBytes, blocks of B = 32 bytes (the last binary block may be shorter).
 *   TERNARY, packed codes (PackedCodes): 128 values a block; byte j of block b holds the fields (code + 1) of values
 *     128 b + j + 32 i, i = 0 .. 3, in bits 2i .. 2i + 1. A field of 3 reads as the code 2, as the format says.
 *   Bit planes, 256 values a block of a plane: bit i of byte j of block b is value 256 b + 8 j + i (values past K
 *     are 0 bits). BINARY: plane 0, the sign (code = 1 - 2 bit); TERNARY: plane 0 the mask, plane 1 the sign
 *     (code = mask - 2 sign), at W 8 bytes into the row.
 * Groups (of scales): one a row, or whole blocks (a multiple of 128 values packed, 256 in planes).
 * Tokens: in groups of G = 32 (16 at 128 bits), the last padded with tokens whose codes are 0; the caller
 *   transposes each group ({@link #transpose}): code of value v of token t at (g P + v) G + t % G, g = t / G, P = K
 *   padded to whole blocks (codes past K are 0).
 * Tables (per thread, native memory, 64-byte aligned), rebuilt for every block of every group: entry e of byte j at
 *   (256 j + e) G int16, lane t =
 *     TERNARY: sum_i (field_i(e) - 1) q_t(128 b + j + 32 i), the products of the four codes e stands for;
 *     planes:  sum over the bits i set in e of q_t(256 b + 8 j + i), the codes the byte's bits pick;
 *   for every byte value e: 256 entries of G lanes, 16 KB a byte, 512 KB a block (half that at 128 bits).
 * Per row, block and plane: one lookup per byte (two vectors of G / 2 tokens), added in int16 lanes: an entry is at
 *   most 4 x 2 x 127 or 8 x 127 = 1016 in magnitude, a block's 32 at most 32512, so exact; each block's sums then
 *   widen into the token's int32 sums over the group, S_0 (and S_1 of the second plane).
 * Result, as the oracle forms it, per group g: acc_g = S_0 (packed ternary), S_0 - 2 S_1 (ternary planes) or
 *   X_g - 2 S_0 (binary, X_g the token's sum of codes over the group), exact; sum = sum + (s_g acc_g + 0f) in group
 *   order (vectors of tokens, each lane the oracle's float steps), y = sum x s_x: results equal the oracle's (and
 *   the one-token kernels') bit for bit, whatever the batch.
 * </pre>
 * The vectors are 256 bits at every width from 256 up: on AVX-512 (where the lookup tiles serve these tensors
 * anyway) two 256-bit adds cost what one 512-bit add does on this machine's cores, and one table layout serves both.
 * At 128 bits they are 128 bits and a group is 16 tokens (tables of 8 KB a byte).
 */
final class BatchTableMatmul {
    private BatchTableMatmul() {
    }

    /** 256 bits from that width up (see the class comment), 128 at 128 (NEON's width). */
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 256
            ? ShortVector.SPECIES_256 : ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, S.vectorShape());
    /** Tokens per group: two vectors, one table entry (32 tokens, or 16 at 128 bits). */
    static final int GROUP = 2 * S.length();
    private static final int BLOCK_BYTES = 32;
    /** Bytes of a table entry (G int16 lanes), of its second vector's offset, and of one byte's table (256 entries). */
    private static final int ENTRY_BYTES = 2 * GROUP;
    private static final int HALF_BYTES = ENTRY_BYTES / 2;
    private static final int BYTE_TABLE = 256 * ENTRY_BYTES;
    /**
     * The smallest batch that takes this kernel (16 tokens, or 8 at 128 bits); smaller ones take the one-token
     * kernels token by token. A group costs the same here whatever its tokens, about what half as many cost token by
     * token (JMH as in the class comment, ternary, calls/s: 256-bit batch 16 210-291 token by token, 292-365 here,
     * batch 12 token by token 297-319; 128-bit batch 8 243-332 token by token, 287-397 here).
     */
    static final int MIN_BATCH = GROUP / 2;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);

    /**
     * TERNARY in packed codes or bit planes and BINARY bit planes, with INT8 activations, one scale per row or groups
     * of whole blocks (128 values packed, 256 in planes: TQ2_0's blocks of 256, say).
     */
    static boolean supports(TensorSpec spec) {
        Encoding e = spec.encoding();
        boolean packed = e == Encoding.TERNARY && spec.layout() == TensorSpec.LAYOUT_PACKED;
        boolean planes = (e == Encoding.TERNARY || e == Encoding.BINARY)
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL;
        return (packed || planes) && spec.activations() == ActivationHint.INT8 && spec.rank() == 2
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % blockValues(spec) == 0);
    }

    /** Whether a batch of {@code batch} tokens takes this kernel. */
    static boolean takes(TensorSpec spec, int batch) {
        return batch >= MIN_BATCH && supports(spec);
    }

    private static boolean binary(TensorSpec spec) {
        return spec.encoding() == Encoding.BINARY;
    }

    private static boolean packed(TensorSpec spec) {
        return spec.layout() == TensorSpec.LAYOUT_PACKED;
    }

    /** Bytes of one plane of a row (bit planes), or of a row (packed codes). */
    private static long planeBytes(TensorSpec spec) {
        return packed(spec) ? PackedCodes.rowBytes(spec) : spec.wordsPerRow() * 8;
    }

    private static int blocks(TensorSpec spec) {
        return (int) ((planeBytes(spec) + BLOCK_BYTES - 1) / BLOCK_BYTES);
    }

    /** Values a block holds: four a byte in packed codes, eight in a plane. */
    private static int blockValues(TensorSpec spec) {
        return packed(spec) ? 4 * BLOCK_BYTES : 8 * BLOCK_BYTES;
    }

    /** Groups of tokens in a batch. */
    static int groups(int batch) {
        return (batch + GROUP - 1) / GROUP;
    }

    /** Length of the transposed codes of a batch. */
    static int transposedLength(TensorSpec spec, int batch) {
        return groups(batch) * blocks(spec) * blockValues(spec) * GROUP;
    }

    /** Length of the transposed sums of codes of a batch (BINARY's X, per group of values). */
    static int sumsLength(TensorSpec spec, int batch) {
        return groups(batch) * (int) spec.groupsPerRow() * GROUP;
    }

    /**
     * Every token's codes ({@code q}, token t at t K) into {@code out} in the order the class comment gives, and for
     * BINARY their sums over each group of values g into {@code sums[(t / G * groups + g) G + t % G]} (else
     * {@code sums} is not read and may be null).
     */
    static void transpose(TensorSpec spec, short[] q, int batch, short[] out, int[] sums) {
        int k = (int) spec.cols();
        int padded = blocks(spec) * blockValues(spec);
        int groups = (int) spec.groupsPerRow();
        int group = (int) spec.effectiveGroupSize();
        Arrays.fill(out, 0, transposedLength(spec, batch), (short) 0);
        if (binary(spec)) {
            Arrays.fill(sums, 0, sumsLength(spec, batch), 0);
        }
        for (int t = 0; t < batch; t++) {
            int at = t / GROUP * padded * GROUP + t % GROUP;
            for (int v = 0; v < k; v++) {
                out[at + v * GROUP] = q[t * k + v];
            }
            if (binary(spec)) {
                for (int v = 0; v < k; v++) {
                    sums[(t / GROUP * groups + v / group) * GROUP + t % GROUP] += q[t * k + v];
                }
            }
        }
    }

    /** Per worker thread: one block's tables, the rows' int32 sums of a group of values (one per plane), float sums. */
    private static final class Scratch {
        final MemorySegment tables = Arena.ofAuto().allocate((long) BLOCK_BYTES * BYTE_TABLE, 64);
        int[] acc0 = new int[0];
        int[] acc1 = new int[0];
        float[] sums = new float[0];

        Scratch grow(int rows) {
            if (acc0.length < rows * GROUP) {
                acc0 = new int[rows * GROUP];
                acc1 = new int[rows * GROUP];
                sums = new float[rows * GROUP];
            }
            return this;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * Rows [r0, r1) for every token: codes (and BINARY's sums of codes) {@link #transpose}d, token t's scale at
     * {@code tokenScales[t]}, results at {@code y[t * N + row]}.
     */
    static void rows(TensorSpec spec, MemorySegment w, short[] codes, int[] codeSums, float[] tokenScales, float[] y,
                     int batch, int r0, int r1) {
        int n = (int) spec.rows();
        boolean packed = packed(spec);
        boolean twoPlanes = !packed && !binary(spec);  // ternary planes: mask, then sign
        int kind = packed ? 0 : twoPlanes ? 1 : 2;  // how a group's int sums make acc_g (addGroupTerms)
        int blocks = blocks(spec);
        int blockValues = blockValues(spec);
        long planeBytes = planeBytes(spec);
        long rowBytes = twoPlanes ? 2 * planeBytes : planeBytes;
        int groups = (int) spec.groupsPerRow();
        int groupBlocks = groups == 1 ? blocks : (int) spec.effectiveGroupSize() / blockValues;
        long scales = spec.scalesOffset();  // computed once: it walks the tensor's shape
        int rows = r1 - r0;
        Scratch s = SCRATCH.get().grow(rows);
        for (int tg = 0; tg < groups(batch); tg++) {
            Arrays.fill(s.sums, 0, rows * GROUP, 0f);
            for (int g = 0; g < groups; g++) {
                Arrays.fill(s.acc0, 0, rows * GROUP, 0);
                if (twoPlanes) {
                    Arrays.fill(s.acc1, 0, rows * GROUP, 0);
                }
                for (int b = g * groupBlocks; b < Math.min(blocks, (g + 1) * groupBlocks); b++) {
                    int bytes = (int) Math.min(BLOCK_BYTES, planeBytes - (long) b * BLOCK_BYTES);
                    int c0 = (tg * blocks + b) * blockValues * GROUP;
                    if (packed) {
                        buildTernary(codes, c0, s.tables);
                    } else {
                        buildSubsetSums(codes, c0, bytes, s.tables);
                    }
                    addBlock(w, rowBytes, b * BLOCK_BYTES, bytes, s.tables, s.acc0, r0, r1);
                    if (twoPlanes) {
                        addBlock(w, rowBytes, planeBytes + b * BLOCK_BYTES, bytes, s.tables, s.acc1, r0, r1);
                    }
                }
                addGroupTerms(w, scales, groups, g, kind, codeSums, (tg * groups + g) * GROUP, s, r0, r1);
            }
            int tokens = Math.min(GROUP, batch - tg * GROUP);
            for (int r = r0; r < r1; r++) {
                for (int t = 0; t < tokens; t++) {
                    int token = tg * GROUP + t;
                    y[token * n + r] = s.sums[(r - r0) * GROUP + t] * tokenScales[token];
                }
            }
        }
    }

    /**
     * Adds group g's terms of rows [r0, r1) into their float sums, every token at once, as the oracle forms them:
     * sum = sum + (s_g acc_g + 0f), acc_g = A0 (kind 0, packed ternary), A0 - 2 A1 (kind 1, ternary planes: mask,
     * sign) or X - 2 A0 (kind 2, binary; X the token's sum of codes over the group, at {@code codeSums[so ..]}).
     */
    private static void addGroupTerms(MemorySegment w, long scales, int groups, int g, int kind, int[] codeSums,
                                      int so, Scratch s, int r0, int r1) {
        for (int r = r0; r < r1; r++) {
            float scale = Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, scales + 2L * ((long) r * groups + g)));
            int o = (r - r0) * GROUP;
            for (int t = 0; t < GROUP; t += I.length()) {
                IntVector a0 = IntVector.fromArray(I, s.acc0, o + t);
                IntVector acc = kind == 0 ? a0
                        : kind == 1 ? a0.sub(IntVector.fromArray(I, s.acc1, o + t).lanewise(VectorOperators.LSHL, 1))
                        : IntVector.fromArray(I, codeSums, so + t).sub(a0.lanewise(VectorOperators.LSHL, 1));
                FloatVector term = ((FloatVector) acc.convert(VectorOperators.I2F, 0)).mul(scale).add(0f);
                FloatVector.fromArray(F, s.sums, o + t).add(term).intoArray(s.sums, o + t);
            }
        }
    }

    /**
     * One TERNARY block's tables for one group, from its codes at {@code codes[c0 ..]} (value 128 b + v of token t at
     * c0 + v G + t). Entry e = f0 + 4 f1 + 16 f2 + 64 f3 is built from entry e - f0's partial sum, one add each.
     */
    private static void buildTernary(short[] codes, int c0, MemorySegment tables) {
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
     * One block's tables over bit planes for one group (its first {@code bytes} bytes), from its codes at
     * {@code codes[c0 ..]} (value 256 b + v of token t at c0 + v G + t): entry e + 2^i = entry e + code i, for
     * e < 2^i, one add each.
     */
    private static void buildSubsetSums(short[] codes, int c0, int bytes, MemorySegment tables) {
        for (int j = 0; j < bytes; j++) {
            for (int half = 0; half < GROUP; half += S.length()) {
                long base = (long) j * BYTE_TABLE + 2L * half;
                ShortVector.zero(S).intoMemorySegment(tables, base, LE);
                for (int i = 0; i < 8; i++) {
                    ShortVector x = ShortVector.fromArray(S, codes, c0 + (8 * j + i) * GROUP + half);
                    long step = (long) (1 << i) * ENTRY_BYTES;
                    for (long e = base; e < base + step; e += ENTRY_BYTES) {
                        ShortVector.fromMemorySegment(S, tables, e, LE).add(x).intoMemorySegment(tables, e + step, LE);
                    }
                }
            }
        }
    }

    /**
     * Adds {@code bytes} bytes (a multiple of 8) at {@code offset} in each of rows [r0, r1) into their int32 sums:
     * per row, eight bytes read at once and each looked up. The eight lookups are written out: as a loop over the
     * eight bytes they ran 10-35% slower (JMH as in the class comment, alternated twice, batch 32: ternary 203-207
     * against 232-318 calls/s, binary 343-358 against 397-398).
     */
    private static void addBlock(MemorySegment w, long rowBytes, long offset, int bytes, MemorySegment tables,
                                 int[] acc, int r0, int r1) {
        for (int r = r0; r < r1; r++) {
            long at = r * rowBytes + offset;
            ShortVector lo = ShortVector.zero(S);  // the group's first half of tokens
            ShortVector hi = lo;                   // its second half
            for (int j = 0; j < bytes; j += 8) {
                long word = w.get(U64, at + j);
                long e = (long) j * BYTE_TABLE + (word & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + HALF_BYTES, LE));
                e = (j + 1L) * BYTE_TABLE + (word >>> 8 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + HALF_BYTES, LE));
                e = (j + 2L) * BYTE_TABLE + (word >>> 16 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + HALF_BYTES, LE));
                e = (j + 3L) * BYTE_TABLE + (word >>> 24 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + HALF_BYTES, LE));
                e = (j + 4L) * BYTE_TABLE + (word >>> 32 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + HALF_BYTES, LE));
                e = (j + 5L) * BYTE_TABLE + (word >>> 40 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + HALF_BYTES, LE));
                e = (j + 6L) * BYTE_TABLE + (word >>> 48 & 0xFF) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + HALF_BYTES, LE));
                e = (j + 7L) * BYTE_TABLE + (word >>> 56) * ENTRY_BYTES;
                lo = lo.add(ShortVector.fromMemorySegment(S, tables, e, LE));
                hi = hi.add(ShortVector.fromMemorySegment(S, tables, e + HALF_BYTES, LE));
            }
            int o = (r - r0) * GROUP;
            int q = I.length();  // a quarter of the group
            IntVector.fromArray(I, acc, o).add(lo.convertShape(VectorOperators.S2I, I, 0)).intoArray(acc, o);
            IntVector.fromArray(I, acc, o + q).add(lo.convertShape(VectorOperators.S2I, I, 1)).intoArray(acc, o + q);
            IntVector.fromArray(I, acc, o + 2 * q).add(hi.convertShape(VectorOperators.S2I, I, 0))
                    .intoArray(acc, o + 2 * q);
            IntVector.fromArray(I, acc, o + 3 * q).add(hi.convertShape(VectorOperators.S2I, I, 1))
                    .intoArray(acc, o + 3 * q);
        }
    }
}
