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
 * {@code bitplane bench}: a short measurement of the matrix-vector kernels against the machine's memory roofline,
 * written as JSON and an SVG chart. The JMH suite in {@code bench} is the careful version; this one takes a minute
 * and shows where each kernel stands. Weights live in native memory, cycled through copies larger than the caches.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure kernels against the memory roofline; write bench.json and bench.svg.")
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--shape", defaultValue = "4096x4096", description = "ROWSxCOLS. Default: ${DEFAULT-VALUE}.")
    String shape;

    @Option(names = "--encodings", defaultValue = "f32,int8,int4,ternary,binary", split = ",",
            description = "Default: ${DEFAULT-VALUE}.")
    List<String> encodings;

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

    /** Bytes of weights cycled through per kernel: several times any cache. */
    private static final long WORKING_SET = 256L << 20;

    record Result(String backend, String kernel, double bitsPerWeight, double weightsPerSecond, double roofline) {
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
        if (rc.length != 2 || threads < 1 || !(seconds > 0)) {
            throw new IllegalArgumentException("--shape must be ROWSxCOLS, --threads >= 1, --seconds > 0");
        }
        int rows = Integer.parseInt(rc[0].trim());
        int cols = Integer.parseInt(rc[1].trim());
        DeviceOption.apply(device);
        double bandwidth = StreamRead.bytesPerSecond(threads, seconds);
        System.err.printf(Locale.ROOT, "read bandwidth, %d thread(s): %.1f GB/s%n", threads, bandwidth / 1e9);
        List<Result> results = new ArrayList<>();
        List<String> descriptions = new ArrayList<>();
        for (String name : backends) {
            Backend be;
            try {
                be = Backends.create(name.trim(), threads);
            } catch (IllegalArgumentException e) {
                if (backends.size() == 1) {
                    throw e;
                }
                System.err.println("skipping " + e.getMessage());
                continue;
            }
            try (be) {
                descriptions.add(be.description());
                for (String enc : encodings) {
                    for (String act : activations) {
                        if (act.equals("int8") && enc.startsWith("f")) {
                            continue; // float weights ignore the activation hint
                        }
                        if (act.equals("binary") && !enc.startsWith("binary")) {
                            continue; // binary activations go only with binary weights (XNOR)
                        }
                        for (String layout : layouts) {
                            boolean packed = RecipeArgs.parsePacked(layout.trim());
                            if (packed && !PackedCodes.supports(QuantSpec.parse(enc).encoding())) {
                                continue;
                            }
                            Result r = measure(be, enc, act, packed, rows, cols, bandwidth);
                            results.add(r);
                            System.err.printf(Locale.ROOT, "%-36s %6.2f bits/w  %7.2f G weights/s  roofline %7.1f  "
                                            + "(%3.0f%%)%n", r.label(), r.bitsPerWeight(), r.weightsPerSecond() / 1e9,
                                    r.roofline() / 1e9, 100 * r.weightsPerSecond() / r.roofline());
                        }
                    }
                }
            }
        }
        ObjectNode json = MetadataJson.newObject();
        ArrayNode described = json.putArray("backends");
        descriptions.forEach(described::add);
        json.put("shape", rows + "x" + cols);
        json.put("threads", threads);
        json.put("read_bandwidth_bytes_per_second", bandwidth);
        ArrayNode list = json.putArray("kernels");
        for (Result r : results) {
            list.addObject().put("backend", r.backend()).put("kernel", r.kernel())
                    .put("bits_per_weight", r.bitsPerWeight()).put("weights_per_second", r.weightsPerSecond())
                    .put("roofline_weights_per_second", r.roofline());
        }
        Files.writeString(Path.of(output + ".json"), json.toPrettyString());
        Files.writeString(Path.of(output + ".svg"), BenchChart.svg(results, String.join("; ", descriptions) + "; "
                + rows + "x" + cols + ", " + threads + " thread(s), read bandwidth "
                + String.format(Locale.ROOT, "%.1f GB/s", bandwidth / 1e9)));
        System.out.println("wrote " + output + ".json and " + output + ".svg");
        return 0;
    }

    private Result measure(Backend be, String enc, String act, boolean packed, int rows, int cols,
                           double bandwidth) {
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
        int copies = (int) Math.max(1, Math.min(64, WORKING_SET / t.bytes().length));
        // Shared: the backend's worker threads read these weights.
        try (Arena arena = Arena.ofShared()) {
            Weights[] ws = new Weights[copies];
            for (int c = 0; c < copies; c++) {
                MemorySegment seg = arena.allocate(t.bytes().length, 64);
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
            // A device backend only enqueues a product: reading one float of the result waits for it, so each
            // timed call is a finished product (on the CPU backends the read costs nothing).
            float[] done = new float[1];
            long calls = 0;
            long warmEnd = System.nanoTime() + (long) (seconds * 0.3e9);
            while (System.nanoTime() < warmEnd) {
                be.matmul(ws[(int) (calls++ % copies)], x, y, 1);
                be.read(y, 0, done, 0, 1);
            }
            calls = 0;
            long start = System.nanoTime();
            long end = start + (long) (seconds * 1e9);
            long now;
            do {
                be.matmul(ws[(int) (calls++ % copies)], x, y, 1);
                be.read(y, 0, done, 0, 1);
                now = System.nanoTime();
            } while (now < end);
            double wps = (double) rows * cols * calls / ((now - start) / 1e9);
            double bpw = t.spec().bitsPerWeight();
            return new Result(be.name(), enc + (packed ? " packed" : "") + " x " + act,
                    bpw, wps,
                    8 * bandwidth / bpw);
        }
    }
}
