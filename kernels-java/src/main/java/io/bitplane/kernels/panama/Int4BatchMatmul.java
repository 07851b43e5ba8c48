package io.bitplane.kernels.panama;

import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * INT4 and INT4_ASYM x INT8 activations for a batch of tokens, on the tiles of {@link NibbleTileMatmul}. That
 * kernel decodes each field again for every token (a shift, a multiply and an add per field and token); for a batch,
 * each run of weights is decoded once into 16-bit values, kept in L1, and multiplied with every token's codes: per R
 * weights and token one broadcast, one multiply and one add. Written first for the lookup-table tiles of
 * Int4TileMatmul (JMH MatmulBenchmark, int4@32 4096x14336 cycled through 4 copies, 2 threads, lookups -> this, in G
 * weight x token products/s: batch 8 80-84 -> 68-89, batch 16 81 -> 113-116, batch 32 74-85 -> 108-141), it moved
 * to the nibble tiles with INT4's one-token kernel (PanamaBackend#upload), and decodes them with fewer operations.
 *
 * <pre>
 * Tiles: NibbleTileMatmul's (R rows per tile, one per 16-bit lane; quads of four 4-bit fields u per lane, four
 *   quads a chunk of 16 values, 8R bytes).
 * Decoded run (per thread): value v = 0 .. RUN-1 of the run at v R: R int16 weights u - 8, lane r = row r.
 *   Values past K decode to -8 but meet codes 0.
 * Codes (the caller's array): chunk-major so that a run's codes for every token are adjacent:
 *   code of value 16c + i of token t at (c T + t) 16 + i, T = the batch rounded up to whole register blocks
 *   ({@link #paddedTokens}); zero past K and for the tokens past the batch.
 * Per run, TOKENS tokens at a time, lane by lane: sum of (u - 8) q in 16 bits (a run is at most 32 values:
 *   32 x 8 x 127 = 32512), then added into the token's 32-bit sums, even rows then odd rows (TileRows' order).
 * Results, as the oracle forms them (X_g the token's sum of codes over group g):
 *   INT4:      acc_g = sum (u - 8) q;       sum = sum + (s_g acc_g + 0f)
 *   INT4_ASYM: acc_g = sum (u - 8) q + 8 X_g = sum u q;   sum = sum + (s_g acc_g + m_g X_g)
 *   in group order; y = sum x s_x.
 * </pre>
 * The integers are exact and the float steps the oracle's, so results equal it (and the one-token kernel) bit for
 * bit. Runs end at group ends: groups must be whole chunks ({@link #supports}).
 */
final class Int4BatchMatmul {
    private Int4BatchMatmul() {
    }

    private static final VectorSpecies<Short> S = TileRows.S;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, S.vectorShape());
    private static final int R = TileRows.ROWS;
    /** Values per chunk: four quads of four fields. */
    static final int CHUNK_VALUES = 16;
    /** Bytes of a chunk of a tile: four quads of R u16 lanes. */
    private static final int CHUNK_BYTES = 8 * R;
    /** Values per run: 32 products of |u - 8| <= 8 and |q| <= 127 stay within int16. */
    private static final int RUN = 32;
    /** Tokens per register block: each decoded vector loaded once serves this many. */
    static final int TOKENS = 8;
    /**
     * The smallest batch that takes this kernel; smaller ones take NibbleTileMatmul token by token. JMH
     * MatmulBenchmark int4@32 4096x4096 packed, 2 threads, calls/s, NibbleTileMatmul -> this: 256-bit vectors
     * (-XX:UseAVX=2) batch 8 387 -> 291-350, batch 16 140 -> 169, batch 32 103 -> 114-125; 512-bit batch 8 524 ->
     * 556, batch 32 135 -> 196 (2026-12-04).
     */
    static final int MIN_BATCH = 2 * TOKENS;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /**
     * Of the tensors on {@link NibbleTileMatmul}'s tiles, INT4 and INT4_ASYM in groups of whole chunks (or one per
     * row); grouped ternary, which those tiles hold too, and groups ending inside a chunk take that kernel.
     */
    static boolean supports(TensorSpec spec) {
        Encoding e = spec.encoding();
        return (e == Encoding.INT4 || e == Encoding.INT4_ASYM)
                && (spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % CHUNK_VALUES == 0);
    }

    static int chunks(TensorSpec spec) {
        return (int) ((spec.cols() + CHUNK_VALUES - 1) / CHUNK_VALUES);
    }

    /** Chunks per group: groups are whole chunks (or one group spans the row). */
    private static int groupChunks(TensorSpec spec) {
        return spec.groupsPerRow() == 1 ? chunks(spec) : (int) spec.effectiveGroupSize() / CHUNK_VALUES;
    }

    /** Tokens rounded up to whole register blocks: the rows of codes the caller provides. */
    static int paddedTokens(int batch) {
        return (batch + TOKENS - 1) / TOKENS * TOKENS;
    }

    /** Per worker thread: the decoded run, a block's int16 sums, and per token 32-bit sums and float sums. */
    private static final class Scratch {
        final short[] decoded = new short[RUN * R];
        final short[] runSums = new short[TOKENS * R];
        final float[] out = new float[R];
        int[] acc = new int[0];
        float[] sums = new float[0];

        Scratch grow(int tokens) {
            if (acc.length < tokens * R) {
                acc = new int[tokens * R];
                sums = new float[tokens * R];
            }
            return this;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * Tiles [tile0, tile1) for every token: codes as the class comment says, group sums of codes
     * of token t at {@code groupSums[t * G ..]} (INT4_ASYM only), results at {@code y[t * N + row]}.
     */
    static void tiles(TensorSpec spec, NibbleTileMatmul.Tiles w, short[] codes, int[] groupSums,
                     float[] tokenScales, float[] y, int batch, int tile0, int tile1) {
        int n = (int) spec.rows();
        int chunks = chunks(spec);
        int groups = (int) spec.groupsPerRow();
        int groupChunks = groupChunks(spec);
        boolean asym = w.mins() != null;
        int tokens = paddedTokens(batch);
        int half = R / 2;
        Scratch s = SCRATCH.get().grow(tokens);
        for (int tile = tile0; tile < tile1; tile++) {
            long tileBase = (long) tile * chunks * CHUNK_BYTES;
            Arrays.fill(s.sums, 0, tokens * R, 0f);
            for (int g = 0; g < groups; g++) {
                Arrays.fill(s.acc, 0, tokens * R, 0);
                int end = Math.min(chunks, (g + 1) * groupChunks);
                for (int c0 = g * groupChunks; c0 < end; c0 += RUN / CHUNK_VALUES) {
                    int c1 = Math.min(end, c0 + RUN / CHUNK_VALUES);
                    for (int c = c0; c < c1; c++) {
                        decode(w.fields(), tileBase + (long) c * CHUNK_BYTES, s.decoded, (c - c0) * CHUNK_VALUES * R);
                    }
                    accumulate(s, (c1 - c0) * CHUNK_VALUES, codes, tokens, c0);
                }
                long at = ((long) tile * groups + g) * R * 4;
                FloatVector scaleEven = FloatVector.fromMemorySegment(F, w.scales(), at, LE);
                FloatVector scaleOdd = FloatVector.fromMemorySegment(F, w.scales(), at + 4L * half, LE);
                for (int t = 0; t < batch; t++) {
                    IntVector accEven = IntVector.fromArray(I, s.acc, t * R);
                    IntVector accOdd = IntVector.fromArray(I, s.acc, t * R + half);
                    FloatVector termEven;
                    FloatVector termOdd;
                    if (asym) {
                        int x = groupSums[t * groups + g];
                        termEven = scaleEven.mul((FloatVector) accEven.add(8 * x).convert(VectorOperators.I2F, 0))
                                .add(FloatVector.fromMemorySegment(F, w.mins(), at, LE).mul((float) x));
                        termOdd = scaleOdd.mul((FloatVector) accOdd.add(8 * x).convert(VectorOperators.I2F, 0))
                                .add(FloatVector.fromMemorySegment(F, w.mins(), at + 4L * half, LE).mul((float) x));
                    } else {
                        termEven = scaleEven.mul((FloatVector) accEven.convert(VectorOperators.I2F, 0)).add(0f);
                        termOdd = scaleOdd.mul((FloatVector) accOdd.convert(VectorOperators.I2F, 0)).add(0f);
                    }
                    FloatVector.fromArray(F, s.sums, t * R).add(termEven).intoArray(s.sums, t * R);
                    FloatVector.fromArray(F, s.sums, t * R + half).add(termOdd).intoArray(s.sums, t * R + half);
                }
            }
            for (int t = 0; t < batch; t++) {
                FloatVector.fromArray(F, s.sums, t * R).mul(tokenScales[t]).intoArray(s.out, 0);
                FloatVector.fromArray(F, s.sums, t * R + half).mul(tokenScales[t]).intoArray(s.out, half);
                TileRows.store(s.out, y, t * n, tile * R, n);
            }
        }
    }

    /**
     * The chunk at {@code at} (four quads of R u16 lanes, field i of quad j = value 4j + i) as 16 vectors of u - 8
     * into {@code out[o ..]}: a shift, a mask and a subtraction per value, in 16-bit lanes (native on AVX2 too).
     */
    private static void decode(MemorySegment fields, long at, short[] out, int o) {
        for (int j = 0; j < 4; j++) {
            ShortVector quad = ShortVector.fromMemorySegment(S, fields, at + 2L * R * j, LE);
            for (int i = 0; i < 4; i++) {
                quad.lanewise(VectorOperators.LSHR, 4 * i).and((short) 15).sub((short) 8)
                        .intoArray(out, o + (4 * j + i) * R);
            }
        }
    }

    /**
     * Adds, for every token, the decoded run ({@code values} vectors, from chunk {@code c0} on) times its codes into
     * its 32-bit sums, TOKENS tokens per pass so that each decoded vector is loaded once per block. Kept out of
     * {@link #tiles}: too big to be inlined, C2 compiles it on its own, which measured faster than inlined.
     */
    private static void accumulate(Scratch s, int values, short[] codes, int tokens, int c0) {
        short[] w = s.decoded;
        for (int t = 0; t < tokens; t += TOKENS) {
            ShortVector a0 = ShortVector.zero(S);
            ShortVector a1 = ShortVector.zero(S);
            ShortVector a2 = ShortVector.zero(S);
            ShortVector a3 = ShortVector.zero(S);
            ShortVector a4 = ShortVector.zero(S);
            ShortVector a5 = ShortVector.zero(S);
            ShortVector a6 = ShortVector.zero(S);
            ShortVector a7 = ShortVector.zero(S);
            for (int c = 0; c < values / CHUNK_VALUES; c++) {
                int q0 = ((c0 + c) * tokens + t) * CHUNK_VALUES;
                for (int i = 0; i < CHUNK_VALUES; i++) {
                    ShortVector v = ShortVector.fromArray(S, w, (c * CHUNK_VALUES + i) * R);
                    a0 = a0.add(v.mul(codes[q0 + i]));
                    a1 = a1.add(v.mul(codes[q0 + CHUNK_VALUES + i]));
                    a2 = a2.add(v.mul(codes[q0 + 2 * CHUNK_VALUES + i]));
                    a3 = a3.add(v.mul(codes[q0 + 3 * CHUNK_VALUES + i]));
                    a4 = a4.add(v.mul(codes[q0 + 4 * CHUNK_VALUES + i]));
                    a5 = a5.add(v.mul(codes[q0 + 5 * CHUNK_VALUES + i]));
                    a6 = a6.add(v.mul(codes[q0 + 6 * CHUNK_VALUES + i]));
                    a7 = a7.add(v.mul(codes[q0 + 7 * CHUNK_VALUES + i]));
                }
            }
            a0.intoArray(s.runSums, 0);
            a1.intoArray(s.runSums, R);
            a2.intoArray(s.runSums, 2 * R);
            a3.intoArray(s.runSums, 3 * R);
            a4.intoArray(s.runSums, 4 * R);
            a5.intoArray(s.runSums, 5 * R);
            a6.intoArray(s.runSums, 6 * R);
            a7.intoArray(s.runSums, 7 * R);
            for (int j = 0; j < TOKENS; j++) {
                widenInto(s.runSums, j * R, s.acc, (t + j) * R);
            }
        }
    }

    /** Adds R int16 sums at {@code sums[so ..]} to 32-bit sums at {@code acc[ao ..]}: even lanes, then odd lanes. */
    private static void widenInto(short[] sums, int so, int[] acc, int ao) {
        IntVector pairs = ShortVector.fromArray(S, sums, so).reinterpretAsInts();
        IntVector.fromArray(I, acc, ao)
                .add(pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .intoArray(acc, ao);
        IntVector.fromArray(I, acc, ao + R / 2)
                .add(pairs.lanewise(VectorOperators.ASHR, 16))
                .intoArray(acc, ao + R / 2);
    }
}
