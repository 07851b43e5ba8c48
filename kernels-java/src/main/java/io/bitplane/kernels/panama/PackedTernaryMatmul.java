package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * TERNARY in packed codes (layout 1) times INT8 activations in 16-bit lanes, for machines without vpermw (AVX2),
 * where {@link SignTileMatmul}'s lookups would be emulated. AVX2 has no byte multiply and the Vector API no
 * {@code maddubs}, and byte shifts are emulated, but 16-bit lanes shift and multiply natively. So 32 bytes of a row
 * are read as 16 u16 lanes, each holding 8 fields of 2 bits, and each field vector (one field of every lane,
 * shifted down and masked) is multiplied with 16 activation codes that were put in the matching order once per
 * token. (INT4, BINARY and ternary in groups took this kernel too, until tiles of rows served them 1.3-8x faster:
 * {@link NibbleTileMatmul}, {@link ByteTableMatmul}. For ternary with one scale per row, tiles do more operations
 * per value.) With 128-bit vectors (NEON's width) it reads each chunk in two halves of 8 lanes, and there it is the
 * ternary kernel for either layout (4096x4096, 2 threads, -XX:MaxVectorSize=16: packed 1.9 -> 22 G weights/s, planes
 * re-laid at load 4.6 -> 29, where the row-expanding and bit-plane kernels had taken them).
 *
 * <pre>
 * Chunk: 32 bytes of a row, lanes s = 0..15 (bytes 2s, 2s + 1), 128 values (PackedCodes):
 *   bits 2i .. 2i+1 of lane s: value 32i + 2s;  bits 8+2i .. 9+2i: value 32i + 2s + 1
 * Field vector j = 2i + h of a chunk: shift 8h + 2i, values 32i + 2s + h (a pair of vectors covers 32 consecutive
 *   values).
 * Fields are not masked: with p a lane and v_i = p >>> 2i (the fields i .. 7 of its bits 2i .. 15), field i is
 *   f_i = v_i - 4 v_(i+1), so sum_i f_i q_i = sum_i v_i (q_i - 4 q_(i-1)) (q_(-1) = 0): a shift, a multiply and an
 *   add per field vector instead of a shift, a mask, a multiply and an add. Each product wraps in int16, but the
 *   identity holds modulo 2^16, and a lane's eight products together are its exact sum of f q.
 * xp (per token, int16, zero past K): xp[128 c + 16 j + s] = D_i = q_i - 4 q_(i-1), for the field i (bits 2i) of
 *   field vector j and lane s and the code q_i of its value (j = 2i for i < 4, 2 (i - 4) + 1 above: shifts 0, 8,
 *   2, 10, ..., 14 in the order of j).
 * Sums: the exact lane sums of f q (f in 0 .. 3, |q| <= 127) stay in int16 for a run of chunks and move into int32
 *   lanes after it; per row one exact integer F = sum f q.
 * As the scalar oracle forms it, with X the token's sum of codes (field = code + 1): acc = F - X;
 *   y = s_x (0f + (s acc + 0f)). One scale per row only: in groups, the sums across the lanes would cost a
 *   horizontal sum per group and row, and {@link NibbleTileMatmul} takes them (ternary@128: 16 G weights/s here,
 *   53 there).
 * </pre>
 * The integer sums are exact and the float steps are the oracle's, so results equal it bit for bit, and a token's
 * result does not depend on its batch. The shifts are written out: C2 compiled a loop over a table of shifts to code
 * half as fast.
 */
final class PackedTernaryMatmul {
    private PackedTernaryMatmul() {
    }

    /**
     * A 32-byte chunk per vector where vectors have 256 bits or more (wider ones would need another field order),
     * else in two 128-bit parts (NEON's width): lanes 0-7, then 8-15, of the same field order.
     */
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 256
            ? ShortVector.SPECIES_256 : ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    /** Lanes of a vector, and vectors per 32-byte chunk. */
    private static final int LANES = S.length();
    private static final int PARTS = 16 / LANES;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Values per chunk (PackedCodes' block of ternary codes). */
    private static final int CHUNK = 128;

    /** Packed TERNARY with INT8 activations and one scale per row. */
    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.TERNARY && spec.activations() == ActivationHint.INT8
                && spec.layout() == TensorSpec.LAYOUT_PACKED && spec.groupsPerRow() == 1;
    }

    /** Chunks per row. */
    static int chunks(TensorSpec spec) {
        return (int) ((spec.cols() + CHUNK - 1) / CHUNK);
    }

    /** Length of one token's permuted activations. */
    static int paddedK(TensorSpec spec) {
        return chunks(spec) * CHUNK;
    }

    /** One token's INT8 codes {@code q[q0 .. q0 + K)} into {@code xp[x0 .. x0 + paddedK)}: D_i in field-vector order. */
    static void prepare(TensorSpec spec, short[] q, int q0, short[] xp, int x0) {
        int k = (int) spec.cols();
        for (int chunk = 0; chunk < paddedK(spec); chunk += CHUNK) {
            int at = x0 + chunk;
            for (int lane = 0; lane < 16; lane++) {
                // Lane s holds values 32 b + 2 s (field b, vector 2 b) and 32 b + 2 s + 1 (field 4 + b, vector
                // 2 b + 1) of blocks b = 0 .. 3 of the chunk; D of field i takes field i - 1's code.
                int below = 0;
                for (int field = 0; field < 8; field++) {
                    int block = field % 4;
                    int odd = field / 4;
                    int code = codeAt(q, q0, k, chunk + 32 * block + 2 * lane + odd);
                    xp[at + 16 * (2 * block + odd) + lane] = (short) (code - 4 * below);
                    below = code;
                }
            }
        }
    }

    /** Code i of a token, 0 past K. */
    private static int codeAt(short[] q, int q0, int k, int i) {
        return i < k ? q[q0 + i] : 0;
    }

    /**
     * Rows [r0, r1) for every token: token t's codes {@link #prepare}d at {@code xp[t * paddedK ..]}, their sum X at
     * {@code codeSums[t]}; y = (0f + (s (F - X) + 0f)) s_x, as the oracle adds its one group term.
     */
    static void rows(TensorSpec spec, MemorySegment w, short[] xp, int[] codeSums, float[] tokenScales, float[] y,
                     int batch, int r0, int r1) {
        int n = (int) spec.rows();
        int paddedK = paddedK(spec);
        int chunks = chunks(spec);
        long rowBytes = PackedCodes.rowBytes(spec);
        long scales = spec.scalesOffset();  // computed once: it is not free (it walks the tensor's shape)
        for (int r = r0; r < r1; r++) {
            float scale = Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, scales + 2L * r));
            long row = r * rowBytes;
            for (int t = 0; t < batch; t++) {
                int f = ternarySum(w, row, chunks, xp, t * paddedK);
                y[t * n + r] = (0f + (scale * (f - codeSums[t]) + 0f)) * tokenScales[t];
            }
        }
    }

    // A row is summed in runs short enough that no int16 lane's exact sum can leave the int16 range, in a small
    // method that returns an int: four int16 sums (four add chains side by side; two chains ran 15-20% slower), added
    // together and widened into int32 lanes after each run. Vectors never cross a call: where C2 declined to inline a
    // helper that took vectors (too large for a cold call site, or past NodeCountInliningCutoff in a big method), the
    // vectors were boxed and the kernel ran 2 to 8x slower. A lane sum: an int16 pair (lo, hi) read as one int lane is
    // lo = (v << 16) >> 16, hi = v >> 16.

    /** Chunks in one run: 8 products of at most 3 x 127 per chunk and part in a lane's exact sum. */
    private static final int TERNARY_RUN = 32767 / (8 * PARTS * 3 * 127);

    /** F of a ternary row of {@code chunks} chunks. */
    private static int ternarySum(MemorySegment w, long row, int chunks, short[] xp, int xo) {
        IntVector total = IntVector.zero(I);
        ShortVector a = ShortVector.zero(S);
        ShortVector b = ShortVector.zero(S);
        ShortVector c = ShortVector.zero(S);
        ShortVector d = ShortVector.zero(S);
        // One loop over the row, the runs ended by a branch inside it: a loop per run (10 chunks) paid C2's setup
        // of a loop (bounds checks hoisted, a first pass peeled) once a run, and ran 20% slower than before the
        // fields went unmasked.
        for (int k = 0, inRun = 0; k < chunks; k++) {
            for (int part = 0; part < PARTS; part++) {  // one part at 256 bits (the loop folds away), two at 128
                // The lane shifted by 2j, unmasked, times D_j (see prepare): the fields above j cancel in the sum.
                ShortVector p = ShortVector.fromMemorySegment(S, w, row + 32L * k + 2L * LANES * part, LE);
                int x = xo + 128 * k + LANES * part;
                a = a.add(p.mul(ShortVector.fromArray(S, xp, x)));
                b = b.add(p.lanewise(VectorOperators.LSHR, 8).mul(ShortVector.fromArray(S, xp, x + 16)));
                c = c.add(p.lanewise(VectorOperators.LSHR, 2).mul(ShortVector.fromArray(S, xp, x + 32)));
                d = d.add(p.lanewise(VectorOperators.LSHR, 10).mul(ShortVector.fromArray(S, xp, x + 48)));
                a = a.add(p.lanewise(VectorOperators.LSHR, 4).mul(ShortVector.fromArray(S, xp, x + 64)));
                b = b.add(p.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S, xp, x + 80)));
                c = c.add(p.lanewise(VectorOperators.LSHR, 6).mul(ShortVector.fromArray(S, xp, x + 96)));
                d = d.add(p.lanewise(VectorOperators.LSHR, 14).mul(ShortVector.fromArray(S, xp, x + 112)));
            }
            if (++inRun == TERNARY_RUN || k == chunks - 1) {
                // Each of a .. d alone wraps; their sum modulo 2^16 is the lanes' exact sum, which fits an int16.
                IntVector u = a.add(b).add(c).add(d).reinterpretAsInts();
                total = total.add(u.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                        .add(u.lanewise(VectorOperators.ASHR, 16));
                a = ShortVector.zero(S);
                b = a;
                c = a;
                d = a;
                inRun = 0;
            }
        }
        return total.reduceLanes(VectorOperators.ADD);
    }
}
