package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.CpuWeights;

import java.lang.foreign.MemorySegment;

/**
 * INT8, INT4 and INT4_ASYM weights in groups of 32 with INT8 activations (Q8_0-, Q4_0- and Q4_1-like), with their
 * rows re-laid for {@code bp_matmul_group_lanes} (layout in group_lanes.c: blocks of eight rows whose groups'
 * products each add up in one 32-bit lane, so no sum across lanes per group, with their scales and mins), beside the
 * file's bytes, which every other use reads (batches of more than {@value #MAX_BATCH} tokens, embedding rows). From
 * L2 on one thread the lanes ran INT4 at 122-134 G weights/s where the kernels over the file's packed codes ran
 * 40-55, and INT8 at 99 against 53. Taken where the AVX-512 VNNI build runs, and for INT4 and INT4_ASYM where the
 * AVX2 build does (vpmaddubsw; INT8's unsigned codes would overflow its pairs, so INT8 is not re-laid there); the
 * portable build's lanes are a plain loop. The lanes are a second copy of the codes, in native memory freed when
 * these weights become unreachable; an INT4 tensor in bit planes then gets no packed copy (see NativeBackend.upload).
 *
 * @param lanes the re-laid rows, {@code bp_group_lanes_bytes} long
 */
record GroupLaneWeights(CpuWeights source, MemorySegment lanes) implements NativeRepackedWeights {

    /**
     * The most tokens a call takes through the lanes, one token at a time; larger batches run the C batch kernel
     * (from VNNI_MIN_BATCH = 6 tokens in quantized_products.c), which turns rows once for all its tokens.
     */
    static final int MAX_BATCH = 5;

    /** Rows per block: the kernel's unit of work. */
    static final int BLOCK_ROWS = 8;

    /** Values per group, and per super-block of 16 groups: k must be a multiple of the latter. */
    static final int GROUP = 32;
    private static final int SUPER_VALUES = 512;

    /** Whether a tensor gets group lanes from a backend whose kernels run the instruction set {@code isa}. */
    static boolean suits(BpmTensor tensor, int isa) {
        TensorSpec spec = tensor.spec();
        Encoding e = spec.encoding();
        boolean taken = isa == NativeKernels.ISA_AVX512 && e == Encoding.INT8
                || isa >= NativeKernels.ISA_AVX2 && (e == Encoding.INT4 || e == Encoding.INT4_ASYM);
        return taken && tensor.isComplete() && spec.rank() == 2
                && spec.activations() == ActivationHint.INT8
                && spec.effectiveGroupSize() == GROUP && spec.cols() % SUPER_VALUES == 0
                && spec.cols() <= Integer.MAX_VALUE / 4 && spec.rows() <= Integer.MAX_VALUE;
    }

    /**
     * Repacks {@code weights} (native memory, a tensor that {@link #suits}) into {@code memory}, over the pool's
     * threads.
     */
    static GroupLaneWeights repack(NativeKernels kernels, WorkerPool pool, CpuWeights weights,
            WeightMemory memory) {
        TensorSpec spec = weights.spec();
        long n = spec.rows();
        long k = spec.cols();
        int encoding = spec.encoding().id;
        MemorySegment lanes = memory.allocate(kernels.groupLanesBytes(encoding, n, k));
        MemorySegment data = weights.data();
        int layout = spec.layout();
        long scalesAt = spec.scalesOffset();
        long minsAt = spec.encoding().hasMins() ? spec.minsOffset() : 0;
        pool.run(blocksOf(n), (b0, b1) -> kernels.groupLanesRepack(data, encoding, layout, k, n, scalesAt, minsAt, b0,
                b1, lanes));
        return new GroupLaneWeights(weights, lanes);
    }

    /** Blocks of {@code rows} rows, the last one partly past them. */
    private static int blocksOf(long rows) {
        return (int) ((rows + BLOCK_ROWS - 1) / BLOCK_ROWS);
    }
}
