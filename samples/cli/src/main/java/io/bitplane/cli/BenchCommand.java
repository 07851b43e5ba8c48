package io.bitplane.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.Weights;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.Callable;

/**
 * {@code bitplane bench}: a short measurement of the matrix-vector kernels, and with {@code --model} of decoding end
 * to end, against the machine's memory roofline, written as JSON and an SVG chart. The JMH suite in {@code bench} is
 * the careful version; this one takes a minute and shows where each kernel stands. Weights live in native memory,
 * cycled through copies larger than the caches.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure kernels (and with --model, decoding) against the memory roofline; write bench.json "
                + "and bench.svg.")
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--shape", defaultValue = "4096x4096", description = "ROWSxCOLS. Default: ${DEFAULT-VALUE}.")
    String shape;

    /** The kernels' encodings when {@code --encodings} is not given and no model is. */
    static final List<String> DEFAULT_ENCODINGS = List.of("f32", "f16", "int8", "int4", "ternary", "binary");

    @Option(names = "--encodings", split = ",", description = "Kernels to measure. Default: f32,f16,int8,int4,ternary,"
            + "binary, or none with --model.")
    List<String> encodings;

    @Option(names = "--model", split = ",", description = "Models to decode end to end (one token per step, "
            + "greedy), each against the roofline of the weight bytes a token reads.")
    List<Path> models = new ArrayList<>();

    @Option(names = "--window", defaultValue = "256", description = "With --model: positions decoded before the KV "
            + "cache starts again from BOS. Default: ${DEFAULT-VALUE}.")
    int window;

    @Option(names = "--profile", description = "With --model: time each op of a token (a second pass) and print "
            + "where the time goes.")
    boolean profile;

    @Option(names = "--activations", defaultValue = "f32,int8,binary", split = ",", description = "f32, int8 or binary "
            + "(binary weights only). Default: ${DEFAULT-VALUE}.")
    List<String> activations;

    @Option(names = "--layout", defaultValue = "planes,packed", split = ",", description = "Layouts to measure "
            + "int4 and ternary in: planes (layout 0), packed (layout 1). Default: ${DEFAULT-VALUE}.")
    List<String> layouts;

    @Option(names = "--threads", defaultValue = "2", description = "Kernel threads. Default: ${DEFAULT-VALUE}.")
    int threads;

    @Option(names = "--backend", defaultValue = "java,native,opencl", split = ",", description = "Backends to measure side by "
            + "side; one that cannot start here is skipped with its reason. Default: ${DEFAULT-VALUE}.")
    List<String> backends;

    @Option(names = "--device", description = "Device number for the opencl backend (`bitplane devices`).")
    Integer device;

    @Option(names = "--seconds", defaultValue = "1.5", description = "Time per kernel. Default: ${DEFAULT-VALUE}.")
    double seconds;

    @Option(names = "--output", defaultValue = "bench", description = "Writes OUTPUT.json and OUTPUT.svg. "
            + "Default: ${DEFAULT-VALUE}.")
    String output;

    /**
     * Bytes of weights cycled through per kernel: several times any cache. 256 MB was, until a machine of this
     * project's reported a 480 MB L3: there a stream read 47 GB/s over 128 MB, 30 over 256 MB (against 26-31 over
     * 512 MB to 2 GB), and kernels cycling through 256 MB read up to 121% of the roofline.
     */
    private static final long WORKING_SET = 1L << 30;
    /** At most this many copies of one tensor (a small tensor's copies would take long to upload). */
    private static final int MAX_COPIES = 256;

    /**
     * One kernel; {@code bandwidth} was measured just before it and just after, the higher (StreamRead#ofRun: this
     * machine's drifts from minute to minute).
     */
    record Result(String backend, String kernel, double bitsPerWeight, double weightsPerSecond, double bandwidth,
                  double roofline) {
        String label() {
            return backend + ": " + kernel;
        }
    }

    @Override
    public Integer call() throws Exception {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            throw new IllegalArgumentException("bench needs the Vector API: start the JVM with --add-modules "
                    + "jdk.incubator.vector (./bitplane does)");
        }
        String[] rc = shape.toLowerCase(Locale.ROOT).split("x");
        if (rc.length != 2 || threads < 1 || !(seconds > 0) || window < 1) {
            throw new IllegalArgumentException("--shape must be ROWSxCOLS, --threads >= 1, --seconds > 0, "
                    + "--window >= 1");
        }
        for (Path m : models) {
            if (!Files.isReadable(m)) {
                throw new IllegalArgumentException("--model " + m + ": no such readable file");
            }
        }
        List<String> kernelEncodings = encodings != null ? encodings : models.isEmpty() ? DEFAULT_ENCODINGS
                : List.of();
        int rows = Integer.parseInt(rc[0].trim());
        int cols = Integer.parseInt(rc[1].trim());
        DeviceOption.apply(device);
        List<Result> results = new ArrayList<>();
        List<String> descriptions = new ArrayList<>();
        List<Boolean> askedLayouts = layouts.stream().map(l -> RecipeArgs.parsePacked(l.trim())).distinct().toList();
        for (String name : kernelEncodings.isEmpty() ? List.<String>of() : backends) {
            try (Backend be = Backends.create(name.trim(), threads)) {
                descriptions.add(be.description());
            } catch (IllegalArgumentException e) {
                if (backends.size() == 1) {
                    throw e;
                }
                System.err.println("skipping " + e.getMessage());
                continue;
            }
            for (String enc : kernelEncodings) {
                for (String act : activations) {
                    if (act.equals("int8") && !QuantSpec.parse(enc).encoding().quantized) {
                        continue; // float weights ignore the activation hint
                    }
                    if (act.equals("binary") && !enc.startsWith("binary")) {
                        continue; // binary activations go only with binary weights (XNOR)
                    }
                    for (boolean packed : layoutsOf(enc, askedLayouts)) {
                        Result r;
                        // A backend of its own for each kernel: a backend frees the tiles and copies it makes at
                        // upload (here up to 1 GB a kernel) only when it closes.
                        try (Backend be = Backends.create(name.trim(), threads)) {
                            r = measure(be, enc, act, packed, rows, cols);
                        }
                        collectTheKernelsHeap();
                        results.add(r);
                        System.err.printf(Locale.ROOT, "%-36s %6.2f bits/w  %7.2f G weights/s  roofline %7.1f  "
                                        + "(%3.0f%%; read bandwidth %.1f GB/s)%n", r.label(), r.bitsPerWeight(),
                                r.weightsPerSecond() / 1e9, r.roofline() / 1e9,
                                100 * r.weightsPerSecond() / r.roofline(), r.bandwidth() / 1e9);
                    }
                }
            }
        }
        List<EndToEndBench.Result> decodes = new ArrayList<>();
        for (Path m : models) {
            for (String name : backends) {
                EndToEndBench.Result r;
                try {
                    r = EndToEndBench.measure(m, name.trim(), threads, window, seconds, profile);
                } catch (IllegalArgumentException e) {
                    if (backends.size() == 1) {
                        throw e;
                    }
                    System.err.println("skipping " + e.getMessage());
                    continue;
                }
                decodes.add(r);
                System.err.printf(Locale.ROOT, "%-36s %7.1f tokens/s  %7.1f MB of weights/token  roofline %7.1f  "
                                + "(%3.0f%%; read bandwidth %.1f GB/s); prompt %.1f tokens/s%n", r.label(),
                        r.tokensPerSecond(), r.weightBytesPerToken() / 1e6, r.rooflineTokensPerSecond(),
                        100 * r.tokensPerSecond() / r.rooflineTokensPerSecond(), r.bandwidth() / 1e9,
                        r.promptTokensPerSecond());
                if (r.profile() != null) {
                    printProfile(r);
                }
            }
        }
        ObjectNode json = MetadataJson.newObject();
        ArrayNode described = json.putArray("backends");
        descriptions.forEach(described::add);
        json.put("shape", rows + "x" + cols);
        json.put("threads", threads);
        json.put("read_loop", StreamRead.loop());
        json.put("huge_pages_requested", WeightMemory.hugePagesRequested());
        // What the system granted, as the run ends: the read buffers (kept for the whole run) are still mapped.
        WeightMemory.hugePageBytes().ifPresent(bytes -> json.put("huge_page_bytes_at_end", bytes));
        ArrayNode list = json.putArray("kernels");
        for (Result r : results) {
            list.addObject().put("backend", r.backend()).put("kernel", r.kernel())
                    .put("bits_per_weight", r.bitsPerWeight()).put("weights_per_second", r.weightsPerSecond())
                    .put("read_bandwidth_bytes_per_second", r.bandwidth())
                    .put("roofline_weights_per_second", r.roofline());
        }
        ArrayNode decodeList = json.putArray("decode");
        for (EndToEndBench.Result r : decodes) {
            ObjectNode d = decodeList.addObject().put("backend", r.backend()).put("model", r.model())
                    .put("window", window).put("tokens_per_second", r.tokensPerSecond())
                    .put("weight_bytes_per_token", r.weightBytesPerToken())
                    .put("read_bandwidth_bytes_per_second", r.bandwidth())
                    .put("roofline_tokens_per_second", r.rooflineTokensPerSecond())
                    .put("prompt_tokens_per_second", r.promptTokensPerSecond())
                    .put("prompt_batch", EndToEndBench.PROMPT_BATCH);
            if (r.profile() != null) {
                ArrayNode ops = d.putArray("ops_per_token");
                for (OpProfile.Op op : r.profile()) {
                    ops.addObject().put("op", op.name).put("calls", (double) op.calls / r.profiledTokens())
                            .put("seconds", op.nanos / 1e9 / r.profiledTokens())
                            .put("weight_bytes", (double) op.weightBytes / r.profiledTokens());
                }
            }
        }
        Files.writeString(Path.of(output + ".json"), json.toPrettyString());
        Files.writeString(Path.of(output + ".svg"), chart(results, decodes, descriptions, rows + "x" + cols));
        System.out.println("wrote " + output + ".json and " + output + ".svg");
        return 0;
    }

    private String chart(List<Result> kernels, List<EndToEndBench.Result> decodes, List<String> descriptions,
                         String shape) {
        List<BenchChart.Section> sections = new ArrayList<>();
        if (!kernels.isEmpty()) {
            sections.add(new BenchChart.Section("Matrix-vector weights/s against the memory roofline (" + shape + ")",
                    "dark: achieved; light: roofline = 8 x read bandwidth (" + StreamRead.loop() + " loop"
                            + (WeightMemory.hugePagesRequested() ? ", huge pages" : "") + ") / bits per "
                            + "weight (scales included); "
                            + bandwidthRange(kernels.stream().mapToDouble(Result::bandwidth)),
                    kernels.stream().map(r -> new BenchChart.Bar(r.label(), r.weightsPerSecond(), r.roofline(),
                            String.format(Locale.ROOT, "%.1f / %.1f G weights/s (%.0f%%)", r.weightsPerSecond() / 1e9,
                                    r.roofline() / 1e9, 100 * r.weightsPerSecond() / r.roofline()))).toList()));
        }
        if (!decodes.isEmpty()) {
            sections.add(new BenchChart.Section("Decoding tokens/s against the memory roofline (window " + window
                    + ")", "dark: achieved; light: roofline = read bandwidth / weight bytes read per token; "
                    + bandwidthRange(decodes.stream().mapToDouble(EndToEndBench.Result::bandwidth)) + "; prompt: "
                    + window + " tokens in batches of " + EndToEndBench.PROMPT_BATCH,
                    decodes.stream().map(r -> new BenchChart.Bar(r.label(), r.tokensPerSecond(),
                            r.rooflineTokensPerSecond(), String.format(Locale.ROOT, "%.1f / %.1f tokens/s (%.0f%%); "
                                    + "prompt %.1f tokens/s", r.tokensPerSecond(), r.rooflineTokensPerSecond(),
                                    100 * r.tokensPerSecond() / r.rooflineTokensPerSecond(),
                                    r.promptTokensPerSecond()))).toList()));
        }
        List<String> described = new ArrayList<>(descriptions);
        decodes.stream().map(EndToEndBench.Result::description).filter(d -> !described.contains(d))
                .forEach(described::add);
        return BenchChart.svg(String.join("; ", described) + "; " + threads + " thread(s)", sections);
    }

    /** "read bandwidth A-B GB/s" over the measurements, each taken just before its bar's run. */
    private static String bandwidthRange(java.util.stream.DoubleStream bandwidths) {
        java.util.DoubleSummaryStatistics b = bandwidths.summaryStatistics();
        return String.format(Locale.ROOT, "read bandwidth %.1f-%.1f GB/s", b.getMin() / 1e9, b.getMax() / 1e9);
    }

    /** Where a token's time goes: per op kind, or per matrix for the products, with their read rate. */
    private static void printProfile(EndToEndBench.Result r) {
        long tokens = r.profiledTokens();
        double total = r.profile().stream().mapToLong(op -> op.nanos).sum();
        System.err.printf(Locale.ROOT, "  %-42s %8s %10s %6s %8s%n", "op (per token)", "calls", "us", "share", "GB/s");
        for (OpProfile.Op op : r.profile()) {
            double seconds = op.nanos / 1e9 / tokens;
            String rate = op.weightBytes == 0 ? "" : String.format(Locale.ROOT, "%8.1f",
                    op.weightBytes / 1e9 / (op.nanos / 1e9));
            System.err.printf(Locale.ROOT, "  %-42s %8.1f %10.1f %5.1f%% %8s%n", op.name, (double) op.calls / tokens,
                    seconds * 1e6, 100 * op.nanos / total, rate);
        }
        System.err.printf(Locale.ROOT, "  %-42s %8s %10.1f  (a token took %.1f us in this pass, %.1f in the pass "
                + "without clocks)%n", "all ops", "", total / 1e3 / tokens, r.profiledSeconds() * 1e6 / tokens,
                1e6 / r.tokensPerSecond());
    }

    /**
     * One token's product over copies of a tensor, called in turn. A device backend only enqueues a product: reading
     * one float of the result waits for it, so each call is a finished product (on the CPU backends the read costs
     * nothing).
     */
    private static final class Products {
        private final Backend be;
        private final Weights[] copies;
        private final Buffer x;
        private final Buffer y;
        private final float[] done = new float[1];
        private long calls;

        Products(Backend be, Weights[] copies, Buffer x, Buffer y) {
            this.be = be;
            this.copies = copies;
            this.x = x;
            this.y = y;
        }

        /** Products per second over at least {@code nanos} of calls, going on through the copies. */
        double rateFor(long nanos) {
            long start = System.nanoTime();
            long before = calls;
            long now;
            do {
                be.matmul(copies[(int) (calls++ % copies.length)], x, y, 1);
                be.read(y, 0, done, 0, 1);
                now = System.nanoTime();
            } while (now - start < nanos);
            return (calls - before) / ((now - start) / 1e9);
        }
    }

    /**
     * The layouts to measure {@code enc} in (packed = true): those asked for where the encoding has both, else its
     * one layout, whatever was asked (with {@code --layout packed} alone, INT8 and binary were left out).
     */
    static List<Boolean> layoutsOf(String enc, List<Boolean> asked) {
        return PackedCodes.supports(QuantSpec.parse(enc).encoding()) ? asked : List.of(false);
    }

    /**
     * Each kernel leaves its weights' heap copies behind (4096 x 14336: the float matrix, 235 MB, and its encoding),
     * and a bench allocates too little else for the heap to collect them soon: eight such kernels took the process
     * to 5.6 GB resident without a collection after each (the backends' native memory freed at their close), 3.8 GB
     * with it.
     */
    private static void collectTheKernelsHeap() {
        System.gc();
    }

    private Result measure(Backend be, String enc, String act, boolean packed, int rows, int cols)
            throws InterruptedException {
        // The stream's untimed warm-up passes outlast the backend's workers spinning after the last product.
        double before = StreamRead.besideRun(threads, seconds);
        Random rnd = new Random(1);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian() * 0.02f;
        }
        // Round to nearest for INT4: the kernel does not care how the codes were chosen, and the search is slow.
        QuantSpec spec = QuantSpec.parse(enc.equals("int4") ? "int4-rtn" : enc);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, w, spec,
                io.bitplane.format.convert.Recipe.parseActivations(act, "--activations"));
        if (packed) {
            t = PackedCodes.relayout(t);
        }
        int copies = (int) Math.max(1, Math.min(MAX_COPIES, WORKING_SET / t.bytes().length));
        // Shared: the backend's worker threads read these weights.
        try (Arena arena = Arena.ofShared()) {
            Weights[] ws = new Weights[copies];
            for (int c = 0; c < copies; c++) {
                MemorySegment seg = WeightMemory.allocate(arena, t.bytes().length);
                MemorySegment.copy(t.bytes(), 0, seg, ValueLayout.JAVA_BYTE, 0, t.bytes().length);
                ws[c] = be.upload(new BpmTensor(t.spec(), seg, 0, 0));
            }
            float[] xs = new float[cols];
            for (int i = 0; i < cols; i++) {
                xs[i] = (float) rnd.nextGaussian();
            }
            Buffer x = be.allocate(cols);
            be.write(xs, 0, x, 0, cols);
            Buffer y = be.allocate(rows);
            Products products = new Products(be, ws, x, y);
            long timed = (long) (seconds * 1e9);
            WarmUp.untilSettled(0, timed, products::rateFor);
            double wps = (double) rows * cols * products.rateFor(timed);
            double bandwidth = StreamRead.ofRun(before, StreamRead.besideRun(threads, seconds));
            double bpw = t.spec().bitsPerWeight();
            return new Result(be.name(), enc + (packed ? " packed" : "") + " x " + act,
                    bpw, wps, bandwidth, 8 * bandwidth / bpw);
        }
    }
}
