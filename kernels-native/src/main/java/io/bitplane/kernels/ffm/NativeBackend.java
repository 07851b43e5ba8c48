package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.ActivationQuantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.FloatTiles;
import io.bitplane.kernels.ForwardingBackend;
import io.bitplane.kernels.Weights;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.ArrayBuffer;
import io.bitplane.kernels.scalar.CpuWeights;
import io.bitplane.kernels.scalar.RepackedWeights;
import io.bitplane.kernels.scalar.ScalarBackend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The native backend: matrix products in C (bitplane_kernels.h) on the mapped weights, every other op of the
 * decoder step on the Java backend (the element-wise work is small next to the weights, and the Java kernels for it
 * are vectorized already). Threads come from one Java {@link WorkerPool}, which splits rows and calls C once per
 * slice, so one scheduler owns the cores.
 *
 * <p>Products with float activations over tensors that the Java backend repacks into lookup-table tiles (binary,
 * ternary, INT4) go to the Java backend: measured on the 418M models (2 threads, AVX-512), a token's sixteen
 * 2048 x 2048 ternary products took 1.1 ms on its tiles against 1.8 in C, and 256-token prompts ran 2.8x faster
 * (ternary) and 1.6x (INT4), decoding 1.3x (ternary). {@code -Dbitplane.native.floatProducts=native} keeps them
 * in C (the tests run both).
 *
 * <p>Some tensors with INT8 activations are re-laid at upload for faster C kernels: BINARY with one scale per row
 * into tiles of 32 rows for one token's product by lookup tables ({@link SignTileWeights}), INT8, INT4 and INT4_ASYM
 * in groups of 32 into group lanes for products of up to five tokens ({@link GroupLaneWeights}; both where the
 * AVX-512 build runs, and larger batches read the file's bytes), other TERNARY and INT4 planes into packed codes.
 * {@code -Dbitplane.native.repack=off} keeps every tensor as the file lays it out.
 *
 * <p>Every shape, length, range and byte count is checked here before a downcall; the C code trusts them. Short
 * calls (those not worth splitting) use the critical handles, which read the Java arrays in place; long calls copy
 * the activations into native memory (small next to the weights) so that the garbage collector never waits for
 * them.
 */
public final class NativeBackend extends ForwardingBackend {

    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    private final NativeKernels kernels;
    private final WorkerPool pool;
    /** Whether float-activation products of tensors the Java backend tiles go to it (see the class comment). */
    private final boolean floatTiles;
    /**
     * Whether upload re-lays tensors for faster kernels: BINARY into lookup tiles (SignTileWeights), INT8, INT4 and
     * INT4_ASYM in groups of 32 into group lanes (GroupLaneWeights), other TERNARY and INT4 planes into packed codes
     * (packsAtLoad). {@code -Dbitplane.native.repack=off} keeps every tensor as the file has it: to compare the
     * kernels, and so that the tests reach the planes' kernels too.
     */
    private final boolean repackAtLoad;
    /** Native copies of weights that were given on the heap; freed on close. */
    private final Arena arena = Arena.ofShared();

    /** Native scratch per thread: the kernels' own (workers) and copied activations (callers), grown as needed. */
    private static final class Scratch {
        MemorySegment kernel = MemorySegment.NULL;
        MemorySegment x = MemorySegment.NULL;
        MemorySegment y = MemorySegment.NULL;
        MemorySegment xScales = MemorySegment.NULL;
        MemorySegment tables = MemorySegment.NULL;
        /** The job whose codes {@code tables} hold (see int8Part), and the sum of those codes. */
        Codes tablesOf;
        int tablesCodeSum;
        byte[] q = new byte[0];
        long[] bits = new long[0];
        float[] scales = new float[0];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    NativeBackend(NativeKernels kernels, int threads) {
        this(kernels, new WorkerPool(threads));
    }

    /** The Java kernels run the other ops on the same pool, so attention over a long context is split too. */
    private NativeBackend(NativeKernels kernels, WorkerPool pool) {
        super(Backends.java(pool));
        this.kernels = kernels;
        this.pool = pool;
        String repack = System.getProperty("bitplane.native.repack", "on");
        this.repackAtLoad = switch (repack) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new IllegalArgumentException("-Dbitplane.native.repack=" + repack + ": expected on or off");
        };
        String products = System.getProperty("bitplane.native.floatProducts", "auto");
        this.floatTiles = switch (products) {
            case "auto" -> inner instanceof FloatTiles;
            case "native" -> false;
            default -> throw new IllegalArgumentException("-Dbitplane.native.floatProducts=" + products
                    + ": expected auto or native");
        };
    }

    /**
     * Whether the Java backend should hold and compute this tensor (its float tiles; see the class comment). A
     * tensor shorter than its spec stays here, where every product refuses it with the tensor's name.
     */
    private boolean onJavaTiles(BpmTensor tensor) {
        return floatTiles && ((FloatTiles) inner).floatTilesFor(tensor.spec()) && tensor.isComplete();
    }

    @Override
    public String name() {
        return "native";
    }

    @Override
    public String description() {
        return "native (" + NativeLibrary.isaName(kernels.isa()) + ", " + pool.threads() + " threads; other ops"
                + (floatTiles ? " and float-activation products of tiled weights" : "") + " on " + inner.name() + ")";
    }

    @Override
    public Weights upload(BpmTensor tensor) {
        if (onJavaTiles(tensor)) {
            return inner.upload(tensor); // its tiles, which matmul hands back to it
        }
        MemorySegment data = tensor.data();
        if (!data.isNative()) {
            MemorySegment copy = arena.allocate(data.byteSize(), 64);
            copy.copyFrom(data);
            data = copy;
        }
        CpuWeights weights = new CpuWeights(tensor.spec(), data);
        if (repackAtLoad && SignTileWeights.suits(tensor, kernels.isa())) {
            return SignTileWeights.repack(kernels, pool, weights);
        }
        if (repackAtLoad && GroupLaneWeights.suits(tensor, kernels.isa())) {
            return GroupLaneWeights.repack(kernels, pool, weights); // from the file's layout, without a packed copy
        }
        return repackAtLoad && packsAtLoad(tensor) ? CpuWeights.packedCopy(tensor.spec(), data, pool) : weights;
    }

    /**
     * TERNARY and INT4 bit planes with INT8 activations: the C kernels read packed codes faster (4096 x 14336, 2
     * threads, in one `bitplane bench` run: ternary 228 against 160 G weights/s, INT4 g32 60 against 49), so such a
     * tensor is re-laid as packed codes at upload, as `convert --layout packed` would have written it. BINARY has no
     * packed layout. A tensor whose bytes fall short of its spec keeps its kernels, which refuse it by name.
     */
    private static boolean packsAtLoad(BpmTensor tensor) {
        TensorSpec spec = tensor.spec();
        return spec.activations() == ActivationHint.INT8 && spec.layout() == TensorSpec.LAYOUT_CANONICAL
                && tensor.isComplete() && spec.rank() == 2 && PackedCodes.supports(spec.encoding());
    }

    @Override
    public void matmul(Weights w, Buffer xb, Buffer yb, int batch) {
        if (w instanceof RepackedWeights && !(w instanceof NativeRepackedWeights)) { // the Java backend's tiles
            inner.matmul(w, xb, yb, batch);
            return;
        }
        CpuWeights cw = CpuWeights.of(w);
        TensorSpec spec = cw.spec();
        ScalarBackend.checkMatmul(spec, xb, yb, batch);
        checkWeights(spec, cw.data());
        if (takesInt8Codes(spec)) {
            productsOfInt8Codes(new Weights[] {w}, ArrayBuffer.of(xb), new float[][] {ArrayBuffer.of(yb)}, batch);
            return;
        }
        if (spec.activations() == ActivationHint.BINARY && spec.layout() == TensorSpec.LAYOUT_CANONICAL
                && spec.groupSize() % 64 == 0) {
            matmulXnor(cw, ArrayBuffer.of(xb), ArrayBuffer.of(yb), batch);
            return;
        }
        float[] x = ArrayBuffer.of(xb);
        float[] y = ArrayBuffer.of(yb);
        int n = (int) spec.rows();
        int k = (int) spec.cols();
        Encoding e = spec.encoding();
        // Binary activations in groups that are not whole words: codes of -1 and +1 with one scale per token,
        // whose products the INT8 activation kernels compute exactly.
        boolean binaryAct = spec.activations() == ActivationHint.BINARY;
        Scratch s = SCRATCH.get();
        if (binaryAct) {
            quantize(s, x, batch, k, true);
        }
        boolean split = WorkerPool.worthSplitting((long) n * k * batch);
        MemorySegment xs = !split ? (binaryAct ? MemorySegment.ofArray(s.q) : MemorySegment.ofArray(x))
                : (binaryAct ? copyIn(s, s.q, batch * k) : copyIn(s, x, batch * k));
        MemorySegment ys = output(s, y, batch * n, split);
        MemorySegment tokenScales = binaryAct ? tokenScales(s, batch, split) : MemorySegment.NULL;
        MemorySegment data = cw.data();
        boolean critical = !split;
        WorkerPool.RangeTask task;
        if (!e.quantized) {
            task = (r0, r1) -> kernels.matmulFloat(critical, data, e.id, k, xs, ys, batch, n, r0, r1);
        } else {
            long group = spec.effectiveGroupSize();
            long scratchBytes = kernels.scratchBytes(k, group, batch);
            long scalesAt = spec.scalesOffset();
            long minsAt = e.hasMins() ? spec.minsOffset() : 0;
            int layout = spec.layout();
            task = binaryAct
                    ? (r0, r1) -> kernels.matmulQuantizedI8(critical, data, e.id, layout, k, group, scalesAt,
                            minsAt, xs, tokenScales, ys, batch, n, r0, r1, kernelScratch(scratchBytes))
                    : (r0, r1) -> kernels.matmulQuantizedF32(critical, data, e.id, layout, k, group, scalesAt,
                            minsAt, xs, ys, batch, n, r0, r1, kernelScratch(scratchBytes));
        }
        runRows(task, n, split, ys, y, batch * n);
    }

    /** Quantized weights whose activation hint is INT8: their products start from the tokens' INT8 codes. */
    private static boolean takesInt8Codes(TensorSpec spec) {
        return spec.encoding().quantized && spec.activations() == ActivationHint.INT8;
    }

    /**
     * Products of one input that all start from its INT8 codes (a layer's q, k and v, say) run as one job: the
     * input quantized once, every product's rows split over the pool in one go (a 256 x 2048 product from DRAM
     * alone took 8.7 us in a 418M ternary model's decode, where its share of one job with q takes its bytes' time);
     * others go one by one.
     */
    @Override
    public void matmuls(Weights[] ws, Buffer xb, Buffer[] ybs, int batch) {
        Backend.checkProductsOfOneInput(ws, ybs);
        float[][] ys = new float[ws.length][];
        for (int i = 0; i < ws.length; i++) {
            if (ws[i] instanceof RepackedWeights && !(ws[i] instanceof NativeRepackedWeights)
                    || !takesInt8Codes(ws[i].spec())) {
                super.matmuls(ws, xb, ybs, batch);
                return;
            }
            CpuWeights cw = CpuWeights.of(ws[i]);
            ScalarBackend.checkMatmul(cw.spec(), xb, ybs[i], batch);
            checkWeights(cw.spec(), cw.data());
            ys[i] = ArrayBuffer.of(ybs[i]);
        }
        productsOfInt8Codes(ws, ArrayBuffer.of(xb), ys, batch);
    }

    /** The tokens' INT8 codes and scales as a job's kernels read them, and whether its calls are short. */
    private record Codes(MemorySegment q, MemorySegment scales, float firstScale, int batch, int k,
                         boolean critical) {
    }

    /** {@code ys[i] = ws[i] x} for checked weights of one width that {@link #takesInt8Codes}: one job. */
    private void productsOfInt8Codes(Weights[] ws, float[] x, float[][] ys, int batch) {
        int k = (int) ws[0].spec().cols();
        long weights = 0;
        long outputs = 0;
        for (Weights w : ws) {
            weights += w.spec().rows() * k * batch;
            outputs += w.spec().rows() * batch;
        }
        Scratch s = SCRATCH.get();
        quantize(s, x, batch, k, false);
        boolean split = WorkerPool.worthSplitting(weights);
        Codes codes = new Codes(split ? copyIn(s, s.q, batch * k) : MemorySegment.ofArray(s.q),
                tokenScales(s, batch, split), s.scales[0], batch, k, !split);
        if (split) {
            s.y = grow(s.y, outputs * Float.BYTES);
        }
        WorkerPool.Part[] parts = new WorkerPool.Part[ws.length];
        long at = 0;
        for (int i = 0; i < ws.length; i++) {
            long count = ws[i].spec().rows() * batch;
            parts[i] = int8Part(ws[i], codes, split ? s.y.asSlice(at * Float.BYTES, count * Float.BYTES)
                    : MemorySegment.ofArray(ys[i]));
            at += count;
        }
        pool.runParts(parts, split);
        if (split) {
            at = 0;
            for (int i = 0; i < ws.length; i++) {
                int count = (int) ws[i].spec().rows() * batch;
                MemorySegment.copy(s.y, FLOAT, at * Float.BYTES, ys[i], 0, count);
                at += count;
            }
        }
    }

    /**
     * One product of a job over the tokens' INT8 codes, writing {@code ys}: one token over BINARY tiles by lookup
     * tables, up to five over group lanes, else the kernels that read the file's layout. Each thread builds its own
     * tables, once per job (7 microseconds for 14336 values), rather than read the caller's: tables written by one
     * core and read by the other moved between them on every token, and building them once took 12-36
     * microseconds of a 4096 x 14336 product's 150-180.
     */
    private WorkerPool.Part int8Part(Weights w, Codes c, MemorySegment ys) {
        CpuWeights cw = CpuWeights.of(w);
        TensorSpec spec = cw.spec();
        int n = (int) spec.rows();
        int k = c.k();
        int batch = c.batch();
        boolean critical = c.critical();
        if (w instanceof SignTileWeights tiles && batch == 1) { // a batch goes through the file's planes below
            long tablesBytes = kernels.signTablesBytes(k);
            int groupTiles = SignTileWeights.GROUP_ROWS / SignTileWeights.TILE_ROWS;
            int tileCount = SignTileWeights.tilesOf(n);
            return new WorkerPool.Part(n, SignTileWeights.GROUP_ROWS, (g0, g1) -> {
                Scratch own = SCRATCH.get();
                if (own.tablesOf != c) {
                    own.tables = grow(own.tables, tablesBytes);
                    own.tablesCodeSum = kernels.signTables(c.q(), k, own.tables);
                    own.tablesOf = c;
                }
                kernels.matmulSignTiles(critical, tiles.tiles(), k, n, own.tables, own.tablesCodeSum, tiles.scales(),
                        c.firstScale(), ys, g0 * groupTiles, Math.min(tileCount, g1 * groupTiles));
            });
        }
        if (w instanceof GroupLaneWeights lanes && batch <= GroupLaneWeights.MAX_BATCH) { // larger: the file's bytes
            int encoding = spec.encoding().id;
            long scratchBytes = kernels.scratchBytes(k, GroupLaneWeights.GROUP, 1);
            return new WorkerPool.Part(n, GroupLaneWeights.BLOCK_ROWS, (b0, b1) -> kernels.matmulGroupLanes(critical,
                    lanes.lanes(), encoding, k, n, c.q(), c.scales(), ys, batch, b0, b1, kernelScratch(scratchBytes)));
        }
        MemorySegment data = cw.data();
        int encoding = spec.encoding().id;
        int layout = spec.layout();
        long group = spec.effectiveGroupSize();
        long scratchBytes = kernels.scratchBytes(k, group, batch);
        long scalesAt = spec.scalesOffset();
        long minsAt = spec.encoding().hasMins() ? spec.minsOffset() : 0;
        return new WorkerPool.Part(n, 1, (r0, r1) -> kernels.matmulQuantizedI8(critical, data, encoding, layout, k,
                group, scalesAt, minsAt, c.q(), c.scales(), ys, batch, n, r0, r1, kernelScratch(scratchBytes)));
    }

    /** Binary weights x binary activations (groups of whole words): sign words per token, then bp_matmul_xnor. */
    private void matmulXnor(CpuWeights cw, float[] x, float[] y, int batch) {
        TensorSpec spec = cw.spec();
        int n = (int) spec.rows();
        int k = (int) spec.cols();
        int words = (int) spec.wordsPerRow();
        Scratch s = SCRATCH.get();
        if (s.bits.length < batch * words) {
            s.bits = new long[batch * words];
        }
        if (s.scales.length < batch) {
            s.scales = new float[batch];
        }
        for (int b = 0; b < batch; b++) {
            s.scales[b] = ActivationQuantizer.signWords(x, b * k, k, s.bits, b * words);
        }
        boolean split = WorkerPool.worthSplitting((long) n * k * batch);
        MemorySegment bits = split ? copyIn(s, s.bits, batch * words) : MemorySegment.ofArray(s.bits);
        MemorySegment scales = tokenScales(s, batch, split);
        MemorySegment ys = output(s, y, batch * n, split);
        MemorySegment data = cw.data();
        long group = spec.effectiveGroupSize();
        long scalesAt = spec.scalesOffset();
        WorkerPool.RangeTask task = (r0, r1) -> kernels.matmulXnor(!split, data, k, group, scalesAt, bits, scales,
                ys, batch, n, r0, r1);
        runRows(task, n, split, ys, y, batch * n);
    }

    /**
     * Runs {@code task} over rows 0..n-1 (or tiles of rows): split over the pool with results in native {@code ys},
     * copied back to {@code y} ({@code count} floats), or on this thread straight into {@code y}.
     */
    private void runRows(WorkerPool.RangeTask task, int n, boolean split, MemorySegment ys, float[] y, int count) {
        if (split) {
            pool.run(n, task);
            MemorySegment.copy(ys, FLOAT, 0, y, 0, count);
        } else {
            task.run(0, n);
        }
    }

    /** What the C kernels trust: a layout they know (spec.problem() ties it to the encoding), every byte inside. */
    private static void checkWeights(TensorSpec spec, MemorySegment data) {
        String problem = spec.problem();
        if (problem != null) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + problem);
        }
        if (spec.layout() != TensorSpec.LAYOUT_CANONICAL && spec.layout() != TensorSpec.LAYOUT_PACKED) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": the native kernels read layouts 0 and 1,"
                    + " not " + spec.layout());
        }
        if (data.byteSize() < spec.byteLength()) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + data.byteSize()
                    + " bytes where its spec needs " + spec.byteLength());
        }
        if (spec.cols() > Integer.MAX_VALUE / 4 || spec.rows() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + spec.name() + " is too large for one matrix product");
        }
    }

    /**
     * Per-token INT8 codes and scales of every token, in C (vectorized) with exactly the Java reference's results
     * ({@code ActivationQuantizer}; {@code NativeQuantizerTest} holds them equal).
     */
    private void quantize(Scratch s, float[] x, int batch, int k, boolean binary) {
        if (s.q.length < batch * k) {
            s.q = new byte[batch * k];
        }
        if (s.scales.length < batch) {
            s.scales = new float[batch];
        }
        if (binary) {
            for (int b = 0; b < batch; b++) {
                s.scales[b] = io.bitplane.kernels.ActivationQuantizer.binarize(x, b * k, k, s.q, b * k);
            }
            return;
        }
        MemorySegment xs = MemorySegment.ofArray(x);
        MemorySegment qs = MemorySegment.ofArray(s.q);
        for (int b = 0; b < batch; b++) {
            s.scales[b] = kernels.quantizeI8(xs.asSlice((long) b * k * Float.BYTES, (long) k * Float.BYTES), k,
                    qs.asSlice((long) b * k, k));
        }
    }

    private static MemorySegment copyIn(Scratch s, float[] x, int floats) {
        s.x = grow(s.x, (long) floats * Float.BYTES);
        MemorySegment.copy(x, 0, s.x, FLOAT, 0, floats);
        return s.x;
    }

    private static MemorySegment copyIn(Scratch s, byte[] q, int bytes) {
        s.x = grow(s.x, bytes);
        MemorySegment.copy(q, 0, s.x, ValueLayout.JAVA_BYTE, 0, bytes);
        return s.x;
    }

    private static MemorySegment copyIn(Scratch s, long[] words, int count) {
        s.x = grow(s.x, 8L * count);
        MemorySegment.copy(words, 0, s.x, ValueLayout.JAVA_LONG, 0, count);
        return s.x;
    }

    /**
     * The token scales ({@code s.scales}) as the kernels read them: the Java array in place for a call on this
     * thread, else a native copy.
     */
    private static MemorySegment tokenScales(Scratch s, int batch, boolean split) {
        if (!split) {
            return MemorySegment.ofArray(s.scales);
        }
        s.xScales = grow(s.xScales, (long) batch * Float.BYTES);
        MemorySegment.copy(s.scales, 0, s.xScales, FLOAT, 0, batch);
        return s.xScales;
    }

    /**
     * Where the kernels write {@code count} floats of y: y itself on this thread, else native memory that
     * {@link #runRows} copies back.
     */
    private static MemorySegment output(Scratch s, float[] y, int count, boolean split) {
        if (!split) {
            return MemorySegment.ofArray(y);
        }
        s.y = grow(s.y, (long) count * Float.BYTES);
        return s.y;
    }

    private static MemorySegment kernelScratch(long bytes) {
        Scratch s = SCRATCH.get();
        s.kernel = grow(s.kernel, bytes);
        return s.kernel;
    }

    /** A native segment of at least {@code bytes}, freed by the garbage collector once its thread drops it. */
    private static MemorySegment grow(MemorySegment current, long bytes) {
        if (current.byteSize() >= bytes) {
            return current;
        }
        return Arena.ofAuto().allocate(Math.max(bytes, 2 * current.byteSize()), 64);
    }

    @Override
    public void close() {
        pool.close();
        inner.close();
        arena.close();
    }
}
