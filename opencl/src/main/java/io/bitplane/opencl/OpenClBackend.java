package io.bitplane.opencl;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.Weights;
import io.bitplane.kernels.scalar.RopeTable;
import io.bitplane.kernels.scalar.ScalarBackend;
import org.lwjgl.PointerBuffer;
import org.lwjgl.system.MemoryStack;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Reference;
import java.nio.IntBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

import static org.lwjgl.opencl.CL10.*;

/**
 * Every op of a decoder step as an OpenCL kernel (bitplane.cl) on device buffers, so that a step enqueues its
 * kernels on one in-order queue and the host waits only when it reads the logits. Weights are uploaded once and
 * stay on the device; INT4, INT4_ASYM and TERNARY bit planes are re-laid there as packed codes (layout 1), the
 * layout the kernels read. Host-to-device traffic per step: the positions of the step's tokens (once, when they
 * change) and nothing else; device-to-host: the logits.
 * <p>Thread-safety: the ops are synchronized, since one queue and one set of kernel objects serve all callers.
 * Set {@code -Dbitplane.opencl.profile=true} to time every kernel and print a profile when the backend closes.
 */
public final class OpenClBackend implements Backend {
    /** Kernels of bitplane.cl; the quantized matmuls are looked up by encoding. */
    private static final String[] KERNELS = {"repack_planes", "quantize_int8", "binarize", "matmul_float", "embed",
        "rms_norm", "rope", "attention", "swiglu", "add", "add_bias", "matmul_int8_int8", "matmul_int8_f32",
        "matmul_int4_int8",
        "matmul_int4_f32", "matmul_int4_asym_int8", "matmul_int4_asym_f32", "matmul_ternary_int8",
        "matmul_ternary_f32", "matmul_binary_int8", "matmul_binary_f32", "matmul_float_wg", "matmul_int8_int8_wg",
        "matmul_int8_f32_wg", "matmul_int4_int8_wg", "matmul_int4_f32_wg", "matmul_int4_asym_int8_wg",
        "matmul_int4_asym_f32_wg", "matmul_ternary_int8_wg", "matmul_ternary_f32_wg", "matmul_binary_int8_wg",
        "matmul_binary_f32_wg"};
    /**
     * Correctly rounded division keeps quantize_int8 equal to Java's (the kernel source disables contraction).
     * -w: PoCL warns that 16-wide vectors change the AVX2 calling convention, on the console of every first run;
     * a failed build still reports its full log.
     */
    static final String BUILD_OPTIONS = "-cl-fp32-correctly-rounded-divide-sqrt -w";
    /** Backends (contexts, queues, programs) open in this JVM: the leak test watches this. */
    static final java.util.concurrent.atomic.AtomicInteger LIVE_BACKENDS = new java.util.concurrent.atomic.AtomicInteger();
    /** Tokens per work-item in the matmul kernels (TOKENS in bitplane.cl). */
    private static final int TOKENS = 4;

    private final OpenClDevice device;
    private final long context;
    private final long queue;
    private final long program;
    private final boolean programFromCache;
    private final Map<String, Long> kernels = new HashMap<>();
    private final DeviceMemory memory;
    private final KernelProfile profile;
    /** Work-group size of the reductions (norms, quantization, attention): a power of two the device allows. */
    private final int reductionSize;
    /**
     * Matrix products as a work-group per row, whose neighbouring work-items read neighbouring memory (what a GPU
     * needs), instead of a row per work-item (what vectorizes on a CPU device). Both give the same bits on integer
     * paths. {@code -Dbitplane.opencl.products=rows|workgroups}; by default work-groups on GPUs.
     */
    private final boolean workGroupProducts;
    private final long localMemoryBytes;
    private boolean closed;

    // Scratch that grows as needed: INT8 activations, positions, rotary table, attention scores.
    private DeviceMemory.Handle quantized;
    private DeviceMemory.Handle tokenScales;
    private DeviceMemory.Handle positions;
    private int[] positionsOnDevice = new int[0];
    private DeviceMemory.Handle ropeCos;
    private DeviceMemory.Handle ropeSin;
    private RopeTable rope;
    private DeviceMemory.Handle scores;
    /** Staging memory for float[] transfers (the device API takes native addresses). */
    private final Arena staging = Arena.ofShared();
    private MemorySegment stage = MemorySegment.NULL;

    public OpenClBackend(OpenClDevice device) {
        this(device, source());
    }

    /** With another kernel source: tests use it to see a build failure reported. */
    OpenClBackend(OpenClDevice device, String kernelSource) {
        this.device = device;
        this.workGroupProducts = productShape(device);
        boolean profiling = Boolean.getBoolean("bitplane.opencl.profile");
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer err = stack.mallocInt(1);
            PointerBuffer properties = stack.pointers(CL_CONTEXT_PLATFORM, device.platform(), 0);
            context = clCreateContext(properties, device.id(), null, 0, err);
            OpenClException.check(err.get(0), "clCreateContext on " + device.name());
            queue = clCreateCommandQueue(context, device.id(), profiling ? CL_QUEUE_PROFILING_ENABLE : 0, err);
            if (err.get(0) != 0) {
                clReleaseContext(context);
                OpenClException.check(err.get(0), "clCreateCommandQueue on " + device.name());
            }
        }
        try {
            ProgramCache.Built built = ProgramCache.build(context, device, kernelSource, BUILD_OPTIONS);
            program = built.program();
            programFromCache = built.fromCache();
            try (MemoryStack stack = MemoryStack.stackPush()) {
                IntBuffer err = stack.mallocInt(1);
                for (String name : KERNELS) {
                    long kernel = clCreateKernel(program, name, err);
                    OpenClException.check(err.get(0), "clCreateKernel " + name);
                    kernels.put(name, kernel);
                }
            }
        } catch (RuntimeException e) {
            releaseDeviceObjects();
            throw e;
        }
        memory = new DeviceMemory(context, device);
        profile = profiling ? new KernelProfile() : null;
        reductionSize = Integer.highestOneBit((int) Math.max(1, Math.min(64, largestCommonGroup())));
        localMemoryBytes = device.info(CL_DEVICE_LOCAL_MEM_SIZE);
        LIVE_BACKENDS.incrementAndGet();
    }

    /**
     * The largest work-group every kernel accepts on this device: the device limit, lowered by kernels that need
     * many registers (a GPU refuses a launch with a larger explicit local size).
     */
    private long largestCommonGroup() {
        long size = device.info(CL_DEVICE_MAX_WORK_GROUP_SIZE);
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer value = stack.mallocPointer(1);
            for (Map.Entry<String, Long> k : kernels.entrySet()) {
                OpenClException.check(clGetKernelWorkGroupInfo(k.getValue(), device.id(), CL_KERNEL_WORK_GROUP_SIZE,
                        value, null), "clGetKernelWorkGroupInfo " + k.getKey());
                size = Math.min(size, value.get(0));
            }
        }
        return size;
    }

    private static boolean productShape(OpenClDevice device) {
        String shape = System.getProperty("bitplane.opencl.products", "auto");
        return switch (shape) {
            case "auto" -> device.type().equals("GPU");
            case "workgroups" -> true;
            case "rows" -> false;
            default -> throw new IllegalArgumentException("-Dbitplane.opencl.products=" + shape
                    + ": expected rows, workgroups or auto");
        };
    }

    static String source() {
        try (InputStream in = OpenClBackend.class.getResourceAsStream("bitplane.cl")) {
            if (in == null) {
                throw new IllegalStateException("bitplane.cl is missing from the opencl jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read bitplane.cl: " + e.getMessage(), e);
        }
    }

    @Override
    public String name() {
        return "opencl";
    }

    @Override
    public String description() {
        return "opencl (" + device.name() + " on " + device.platformName() + ", " + device.computeUnits()
                + " compute units, " + (device.globalMemoryBytes() >> 20) + " MiB"
                + (workGroupProducts ? ", products by work-group" : "") + (programFromCache ? ", kernels from cache" : "")
                + ")";
    }

    public OpenClDevice device() {
        return device;
    }

    /** Bytes of device memory this backend holds now (weights, KV caches, scratch). */
    public long deviceBytes() {
        return memory.heldBytes();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Buffers and weights

    /** Floats on the device; released when unreachable or when the backend closes. */
    static final class DeviceBuffer implements Buffer {
        final DeviceMemory.Handle handle;
        final int floats;
        final OpenClBackend owner;

        DeviceBuffer(OpenClBackend owner, DeviceMemory.Handle handle, int floats) {
            this.owner = owner;
            this.handle = handle;
            this.floats = floats;
        }

        @Override
        public int length() {
            return floats;
        }
    }

    /**
     * A tensor on the device, in the layout the kernels read (INT4, INT4_ASYM, TERNARY always packed). The offsets
     * are those of {@link #spec}, the device-side spec.
     */
    static final class DeviceWeights implements Weights {
        final TensorSpec spec;
        final DeviceMemory.Handle handle;
        final OpenClBackend owner;

        DeviceWeights(OpenClBackend owner, TensorSpec spec, DeviceMemory.Handle handle) {
            this.owner = owner;
            this.spec = spec;
            this.handle = handle;
        }

        @Override
        public TensorSpec spec() {
            return spec;
        }

        int rowBytes() {
            if (spec.layout() == TensorSpec.LAYOUT_PACKED) {
                return Math.toIntExact(PackedCodes.rowBytes(spec));
            }
            return Math.toIntExact(spec.wordsPerRow() * 8); // BINARY: one plane
        }

        long scalesAt() {
            return spec.encoding().quantized ? spec.scalesOffset() : 0;
        }

        long minsAt() {
            return spec.encoding().hasMins() ? spec.minsOffset() : 0;
        }
    }

    @Override
    public synchronized Weights upload(BpmTensor tensor) {
        ensureOpen();
        TensorSpec spec = tensor.spec();
        if (spec.cols() > Integer.MAX_VALUE / 2 || spec.rows() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + spec.name() + " is too large for the OpenCL kernels");
        }
        tensor.requireComplete();
        long bytes = spec.byteLength();
        boolean repack = spec.layout() == TensorSpec.LAYOUT_CANONICAL && PackedCodes.supports(spec.encoding());
        DeviceMemory.Handle raw = memory.allocate(bytes, "tensor " + spec.name());
        try {
            writeBytes(raw, 0, tensor.data(), bytes);
        } catch (RuntimeException e) {
            raw.release();
            throw e;
        }
        if (!repack) {
            DeviceWeights w = new DeviceWeights(this, spec, raw);
            DeviceMemory.releaseWhenUnreachable(w, raw);
            return w;
        }
        TensorSpec packed = spec.withLayout(TensorSpec.LAYOUT_PACKED);
        DeviceMemory.Handle out;
        try {
            out = memory.allocate(packed.byteLength(), "tensor " + spec.name() + " (packed)");
        } catch (RuntimeException e) {
            raw.release();
            throw e;
        }
        int blocks = Math.toIntExact(PackedCodes.rowBytes(packed) / 32);
        launch("repack_planes", new long[] {blocks, spec.rows()}, null, raw, out, spec.encoding().id,
                (int) spec.cols(), (int) spec.wordsPerRow(), (int) PackedCodes.rowBytes(packed));
        copyBytes(raw, spec.scalesOffset(), out, packed.scalesOffset(), spec.scaleBytes());
        if (spec.encoding().hasMins()) {
            copyBytes(raw, spec.minsOffset(), out, packed.minsOffset(), spec.scaleBytes());
        }
        clFinish(queue); // a failed re-layout shows at upload, naming the tensor's load, not at the first step
        raw.release();
        DeviceWeights w = new DeviceWeights(this, packed, out);
        DeviceMemory.releaseWhenUnreachable(w, out);
        return w;
    }

    @Override
    public synchronized Buffer allocate(int floats) {
        ensureOpen();
        if (floats < 0) {
            throw new IllegalArgumentException("negative buffer size " + floats);
        }
        DeviceMemory.Handle h = memory.allocate(4L * floats, floats + " floats");
        DeviceBuffer b = new DeviceBuffer(this, h, floats);
        DeviceMemory.releaseWhenUnreachable(b, h);
        // Backend.allocate promises zeros; a fill keeps the host out of it.
        zero(h, 4L * floats);
        return b;
    }

    // ---------------------------------------------------------------------------------------------------------
    // The ops of a decoder step

    @Override
    public synchronized void embed(Weights table, int row, Buffer out, int outOffset) {
        DeviceWeights w = weights(table);
        DeviceBuffer o = buffer(out);
        TensorSpec s = w.spec;
        if (row < 0 || row >= s.rows()) {
            throw new IllegalArgumentException("row " + row + " outside " + s.name() + " (" + s.rows() + " rows)");
        }
        require(outOffset >= 0 && (long) outOffset + s.cols() <= o.floats, "embed: output buffer too small");
        launch("embed", new long[] {s.cols()}, null, w, s.encoding().id, row, (int) s.cols(),
                quantizedRowBytes(w), (int) s.effectiveGroupSize(), (int) s.groupsPerRow(), w.scalesAt(), w.minsAt(),
                o, outOffset);
    }

    @Override
    public synchronized void matmul(Weights weights, Buffer xb, Buffer yb, int batch) {
        DeviceWeights w = weights(weights);
        DeviceBuffer x = buffer(xb);
        DeviceBuffer y = buffer(yb);
        TensorSpec s = w.spec;
        ScalarBackend.checkMatmul(s, x, y, batch);
        int rows = (int) s.rows();
        int cols = (int) s.cols();
        int tiles = (batch + TOKENS - 1) / TOKENS;
        long[] global = {rows, tiles};
        // The work-group shape: reductionSize work-items per row, local memory for the row's partial results.
        long[] groupGlobal = {(long) rows * reductionSize, tiles};
        long[] groupLocal = {reductionSize, 1};
        if (!s.encoding().quantized) {
            long local = 4L * TOKENS * reductionSize;
            if (byWorkGroup(local)) {
                launch("matmul_float_wg", groupGlobal, groupLocal, w, s.encoding().id, x, y, rows, cols, batch,
                        new Local(local));
            } else {
                launch("matmul_float", global, null, w, s.encoding().id, x, y, rows, cols, batch);
            }
            return;
        }
        String kernel = "matmul_" + s.encoding().name().toLowerCase(java.util.Locale.ROOT);
        Object[] tail = {rows, cols, batch, quantizedRowBytes(w), (int) s.effectiveGroupSize(),
            (int) s.groupsPerRow(), w.scalesAt(), w.minsAt()};
        // Binary activations (only on BINARY weights) are codes of -1 and +1 with one scale per token: the INT8
        // activation kernels compute exactly their XNOR products.
        boolean binary = s.activations() == ActivationHint.BINARY;
        boolean int8 = s.activations() == ActivationHint.INT8 || binary;
        if (int8) {
            quantizeActivations(x, cols, batch, binary);
        }
        Object[] head = int8 ? new Object[] {w, quantized, tokenScales, y} : new Object[] {w, x, y};
        String name = kernel + (int8 ? "_int8" : "_f32");
        long local = (int8 ? 8L : 4L) * TOKENS * s.groupsPerRow();
        if (byWorkGroup(local)) {
            launch(name + "_wg", groupGlobal, groupLocal, concat(concat(head, tail), new Object[] {new Local(local)}));
        } else {
            launch(name, global, null, concat(head, tail));
        }
    }

    /** Whether this product runs as a work-group per row: asked for, and its local memory fits the device. */
    private boolean byWorkGroup(long localBytes) {
        return workGroupProducts && localBytes <= localMemoryBytes / 2;
    }

    /** INT8 (or binary) activations of the batch into the quantized scratch (one work-group per token). */
    private void quantizeActivations(DeviceBuffer x, int cols, int batch, boolean binary) {
        quantized = grow(quantized, (long) batch * cols, "INT8 activations");
        tokenScales = grow(tokenScales, 4L * batch, "activation scales");
        launch(binary ? "binarize" : "quantize_int8", new long[] {(long) batch * reductionSize},
                new long[] {reductionSize}, x, quantized,
                tokenScales, cols, new Local(4L * reductionSize));
    }

    @Override
    public synchronized void rmsNorm(Buffer out, Buffer x, Weights gamma, int dim, int batch, float eps) {
        DeviceBuffer o = buffer(out);
        DeviceBuffer in = buffer(x);
        DeviceWeights g = weights(gamma);
        require(dim > 0 && batch > 0 && (long) dim * batch <= Math.min(o.floats, in.floats)
                && g.spec.cols() >= dim, "rmsNorm: shapes do not fit");
        require(!g.spec.encoding().quantized, "rmsNorm: " + g.spec.name() + " must be a float tensor");
        launch("rms_norm", new long[] {(long) batch * reductionSize}, new long[] {reductionSize}, o, in, g,
                g.spec.encoding().id, dim, eps, new Local(4L * reductionSize));
    }

    @Override
    public synchronized void rope(Buffer v, int batch, int[] positions, int heads, int headSize, float theta,
                                  float[] freqFactors) {
        DeviceBuffer b = buffer(v);
        require(batch > 0 && heads > 0 && headSize > 1 && headSize % 2 == 0 && positions.length >= batch
                && (long) batch * heads * headSize <= b.floats, "rope: shapes do not fit");
        int max = checkedMaxPosition(positions, batch, Integer.MAX_VALUE);
        ropeTable(headSize, theta, freqFactors, max);  // RopeTable refuses factors of the wrong count
        DeviceMemory.Handle pos = positions(positions, batch);
        launch("rope", new long[] {(long) heads * headSize / 2, batch}, null, b, pos, ropeCos, ropeSin, heads,
                headSize);
    }

    @Override
    public synchronized void attention(Buffer out, Buffer q, Buffer keys, Buffer values, int[] positions, int batch,
                                       AttentionShape s) {
        DeviceBuffer o = buffer(out);
        DeviceBuffer qb = buffer(q);
        DeviceBuffer k = buffer(keys);
        DeviceBuffer vb = buffer(values);
        int kvDim = s.kvDim();
        require(batch > 0 && s.nKvHeads() > 0 && s.nHeads() % s.nKvHeads() == 0 && positions.length >= batch
                && (long) batch * s.queryDim() <= Math.min(o.floats, qb.floats), "attention: shapes do not fit");
        int capacity = Math.min(k.floats, vb.floats) / kvDim;
        checkedMaxPosition(positions, batch, capacity);
        scores = grow(scores, 4L * batch * s.nHeads() * capacity, "attention scores");
        DeviceMemory.Handle pos = positions(positions, batch);
        launch("attention", new long[] {(long) s.nHeads() * reductionSize, batch}, new long[] {reductionSize, 1}, o,
                qb, k, vb, pos, scores, s.nHeads(), s.nKvHeads(), s.headSize(), capacity,
                new Local(4L * reductionSize));
    }

    @Override
    public synchronized void swiGlu(Buffer gate, Buffer up, int n) {
        elementwise("swiglu", gate, up, n);
    }

    @Override
    public synchronized void add(Buffer acc, Buffer x, int n) {
        elementwise("add", acc, x, n);
    }

    @Override
    public synchronized void addBias(Buffer acc, Weights bias, int n, int batch) {
        DeviceBuffer a = buffer(acc);
        DeviceWeights b = weights(bias);
        require(n > 0 && batch > 0 && (long) n * batch <= a.floats && b.spec.cols() >= n,
                "addBias: shapes do not fit");
        require(!b.spec.encoding().quantized, "addBias: " + b.spec.name() + " must be a float tensor");
        launch("add_bias", new long[] {(long) n * batch}, null, a, b, b.spec.encoding().id, n);
    }

    /** A kernel over the first n floats of two buffers, a[i] from a[i] and b[i]: one work-item per float. */
    private void elementwise(String kernel, Buffer a, Buffer b, int n) {
        DeviceBuffer da = buffer(a);
        DeviceBuffer db = buffer(b);
        require(n >= 0 && n <= Math.min(da.floats, db.floats), kernel + ": " + n + " floats do not fit");
        if (n > 0) {
            launch(kernel, new long[] {n}, null, da, db);
        }
    }

    @Override
    public synchronized void copy(Buffer src, int srcOffset, Buffer dst, int dstOffset, int n) {
        DeviceBuffer s = buffer(src);
        DeviceBuffer d = buffer(dst);
        checkRange(s, srcOffset, n, "copy source");
        checkRange(d, dstOffset, n, "copy destination");
        if (n > 0) {
            copyBytes(s.handle, 4L * srcOffset, d.handle, 4L * dstOffset, 4L * n);
        }
        Reference.reachabilityFence(s);
        Reference.reachabilityFence(d);
    }

    @Override
    public synchronized void read(Buffer src, int srcOffset, float[] dst, int dstOffset, int n) {
        DeviceBuffer s = buffer(src);
        checkRange(s, srcOffset, n, "read source");
        java.util.Objects.checkFromIndexSize(dstOffset, n, dst.length);
        if (n == 0) {
            return;
        }
        MemorySegment host = stage(4L * n);
        int err = nclEnqueueReadBuffer(queue, s.handle.mem, 1, 4L * srcOffset, 4L * n, host.address(), 0, 0, 0);
        Reference.reachabilityFence(s);
        OpenClException.check(err, "clEnqueueReadBuffer");
        if (profile != null) {
            profile.transfer("read to host", 4L * n);
        }
        MemorySegment.copy(host, ValueLayout.JAVA_FLOAT, 0, dst, dstOffset, n);
    }

    @Override
    public synchronized void write(float[] src, int srcOffset, Buffer dst, int dstOffset, int n) {
        DeviceBuffer d = buffer(dst);
        checkRange(d, dstOffset, n, "write destination");
        java.util.Objects.checkFromIndexSize(srcOffset, n, src.length);
        if (n == 0) {
            return;
        }
        MemorySegment host = stage(4L * n);
        MemorySegment.copy(src, srcOffset, host, ValueLayout.JAVA_FLOAT, 0, n);
        writeBytes(d.handle, 4L * dstOffset, host, 4L * n);
        Reference.reachabilityFence(d);
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        // Kernels are enqueued without waiting: let the last step finish before its buffers, queue and context go,
        // rather than rely on the driver to keep released objects alive for commands still in flight.
        clFinish(queue);
        if (profile != null) {
            System.err.print(profile.report(description()));
        }
        memory.releaseAll();
        releaseDeviceObjects();
        staging.close();
        LIVE_BACKENDS.decrementAndGet();
    }

    private void releaseDeviceObjects() {
        for (long kernel : kernels.values()) {
            clReleaseKernel(kernel);
        }
        kernels.clear();
        if (program != 0) {
            clReleaseProgram(program);
        }
        clReleaseCommandQueue(queue);
        clReleaseContext(context);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Helpers

    /** A {@code local} kernel argument of this many bytes. */
    private record Local(long bytes) {
    }

    /**
     * Sets the arguments of kernel {@code name} in order and enqueues it; the buffers in {@code args} stay
     * reachable until the enqueue returns (after that the queue holds them).
     */
    private void launch(String name, long[] global, long[] local, Object... args) {
        ensureOpen();
        long kernel = kernels.get(name);
        for (int i = 0; i < args.length; i++) {
            int err = switch (args[i]) {
                case DeviceBuffer b -> clSetKernelArg1p(kernel, i, b.handle.mem);
                case DeviceWeights w -> clSetKernelArg1p(kernel, i, w.handle.mem);
                case DeviceMemory.Handle h -> clSetKernelArg1p(kernel, i, h.mem);
                case Integer v -> clSetKernelArg1i(kernel, i, v);
                case Long v -> clSetKernelArg1l(kernel, i, v);
                case Float v -> clSetKernelArg1f(kernel, i, v);
                case Local l -> clSetKernelArg(kernel, i, l.bytes());
                default -> throw new IllegalStateException("argument " + i + " of " + name + ": " + args[i]);
            };
            OpenClException.check(err, "clSetKernelArg " + i + " of " + name);
        }
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer g = stack.mallocPointer(global.length);
            for (int i = 0; i < global.length; i++) {
                g.put(i, global[i]);
            }
            PointerBuffer l = null;
            if (local != null) {
                l = stack.mallocPointer(local.length);
                for (int i = 0; i < local.length; i++) {
                    l.put(i, local[i]);
                }
            }
            PointerBuffer event = profile != null ? stack.mallocPointer(1) : null;
            int err = nclEnqueueNDRangeKernel(queue, kernel, global.length, 0, g.address(),
                    l == null ? 0 : l.address(), 0, 0, event == null ? 0 : event.address());
            OpenClException.check(err, "enqueueing kernel " + name);
            if (profile != null) {
                profile.kernel(name, event.get(0));
            }
        }
        Reference.reachabilityFence(args);
    }

    private void writeBytes(DeviceMemory.Handle h, long offset, MemorySegment data, long bytes) {
        MemorySegment src = data;
        if (!data.isNative()) {
            src = stage(bytes); // heap bytes (tests, small tensors): the API takes an address
            MemorySegment.copy(data, 0, src, 0, bytes);
        }
        int err = nclEnqueueWriteBuffer(queue, h.mem, 1, offset, bytes, src.address(), 0, 0, 0);
        Reference.reachabilityFence(data);
        OpenClException.check(err, "clEnqueueWriteBuffer");
        if (profile != null) {
            profile.transfer("write to device", bytes);
        }
    }

    private void copyBytes(DeviceMemory.Handle from, long fromOffset, DeviceMemory.Handle to, long toOffset,
                           long bytes) {
        OpenClException.check(clEnqueueCopyBuffer(queue, from.mem, to.mem, fromOffset, toOffset, bytes, null, null),
                "clEnqueueCopyBuffer");
    }

    private void zero(DeviceMemory.Handle h, long bytes) {
        if (bytes == 0) {
            return;
        }
        try (MemoryStack stack = MemoryStack.stackPush()) {
            java.nio.ByteBuffer pattern = stack.calloc(4);
            OpenClException.check(org.lwjgl.opencl.CL12.clEnqueueFillBuffer(queue, h.mem, pattern, 0, bytes, null,
                    null), "clEnqueueFillBuffer");
        }
    }

    private MemorySegment stage(long bytes) {
        if (stage.byteSize() < bytes) {
            stage = staging.allocate(Math.max(bytes, 2 * stage.byteSize()), 64);
        }
        return stage;
    }

    /** A scratch buffer of at least {@code bytes}, replaced by a larger one when needed. */
    private DeviceMemory.Handle grow(DeviceMemory.Handle h, long bytes, String what) {
        if (h != null && h.bytes >= bytes) {
            return h;
        }
        if (h != null) {
            h.release(); // the queue keeps it alive for kernels already enqueued
        }
        return memory.allocate(Math.max(bytes, h == null ? 0 : 2 * h.bytes), what);
    }

    /** The positions of the first {@code batch} tokens on the device, written only when they changed. */
    private DeviceMemory.Handle positions(int[] p, int batch) {
        if (positionsOnDevice.length != batch || !Arrays.equals(positionsOnDevice, 0, batch, p, 0, batch)) {
            positions = grow(positions, 4L * batch, "positions");
            MemorySegment host = stage(4L * batch);
            MemorySegment.copy(p, 0, host, ValueLayout.JAVA_INT, 0, batch);
            writeBytes(positions, 0, host, 4L * batch);
            positionsOnDevice = Arrays.copyOf(p, batch);
        }
        return positions;
    }

    /** The host's rotary table (the one the CPU backends use) on the device, grown to cover {@code maxPosition}. */
    private void ropeTable(int headSize, float theta, float[] freqFactors, int maxPosition) {
        RopeTable table = RopeTable.covering(rope, headSize, theta, freqFactors, maxPosition);
        if (table == rope) {
            return;
        }
        rope = table;
        ropeCos = upload(ropeCos, rope.cos, "rotary cosines");
        ropeSin = upload(ropeSin, rope.sin, "rotary sines");
    }

    private DeviceMemory.Handle upload(DeviceMemory.Handle old, float[] values, String what) {
        DeviceMemory.Handle h = grow(old, 4L * values.length, what);
        MemorySegment host = stage(4L * values.length);
        MemorySegment.copy(values, 0, host, ValueLayout.JAVA_FLOAT, 0, values.length);
        writeBytes(h, 0, host, 4L * values.length);
        return h;
    }

    private static int checkedMaxPosition(int[] positions, int batch, int capacity) {
        int max = 0;
        for (int b = 0; b < batch; b++) {
            if (positions[b] < 0 || positions[b] >= capacity) {
                throw new IllegalArgumentException("position " + positions[b] + " of token " + b
                        + " is outside the cache (" + capacity + " positions)");
            }
            max = Math.max(max, positions[b]);
        }
        return max;
    }

    /** Bytes per row for the kernels' row addressing (packed rows or one binary plane; unused otherwise). */
    private static int quantizedRowBytes(DeviceWeights w) {
        return w.spec.encoding().isBitPlanes() ? w.rowBytes() : 0;
    }

    private DeviceBuffer buffer(Buffer b) {
        if (b instanceof DeviceBuffer d && d.owner == this) {
            return d;
        }
        throw new IllegalArgumentException("buffer " + b + " was not allocated by this OpenCL backend");
    }

    private DeviceWeights weights(Weights w) {
        if (w instanceof DeviceWeights d && d.owner == this) {
            return d;
        }
        throw new IllegalArgumentException("weights " + w + " were not uploaded to this OpenCL backend");
    }

    private static void checkRange(DeviceBuffer b, int offset, int n, String what) {
        if (offset < 0 || n < 0 || (long) offset + n > b.floats) {
            throw new IllegalArgumentException(what + ": floats " + offset + ".." + ((long) offset + n)
                    + " outside a buffer of " + b.floats);
        }
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("the OpenCL backend is closed");
        }
    }

    private static Object[] concat(Object[] a, Object[] b) {
        Object[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
