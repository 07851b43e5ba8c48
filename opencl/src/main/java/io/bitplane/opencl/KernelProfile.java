package io.bitplane.opencl;

import org.lwjgl.system.MemoryStack;

import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.lwjgl.opencl.CL10.*;

/**
 * Where the device time goes (-Dbitplane.opencl.profile=true): each kernel's OpenCL profiling event, read when
 * the backend closes, plus every transfer between host and device. The transfers are the proof that a decoder
 * step stays on the device: per token, one small write of positions and one read of logits.
 */
final class KernelProfile {
    private record Launch(String kernel, long event) {
    }

    private final List<Launch> launches = new ArrayList<>();
    private final Map<String, long[]> transfers = new LinkedHashMap<>(); // direction -> {count, bytes}

    void kernel(String name, long event) {
        launches.add(new Launch(name, event));
    }

    void transfer(String direction, long bytes) {
        long[] t = transfers.computeIfAbsent(direction, d -> new long[2]);
        t[0]++;
        t[1] += bytes;
    }

    /** The table, once the queue has finished; releases the events. */
    String report(String backend) {
        Map<String, long[]> byKernel = new LinkedHashMap<>(); // kernel -> {calls, nanoseconds}
        long total = 0;
        try (MemoryStack stack = MemoryStack.stackPush()) {
            LongBuffer start = stack.mallocLong(1);
            LongBuffer end = stack.mallocLong(1);
            for (Launch l : launches) {
                clGetEventProfilingInfo(l.event, CL_PROFILING_COMMAND_START, start, null);
                clGetEventProfilingInfo(l.event, CL_PROFILING_COMMAND_END, end, null);
                clReleaseEvent(l.event);
                long ns = Math.max(0, end.get(0) - start.get(0));
                long[] k = byKernel.computeIfAbsent(l.kernel, n -> new long[2]);
                k[0]++;
                k[1] += ns;
                total += ns;
            }
        }
        launches.clear();
        StringBuilder out = new StringBuilder("OpenCL profile, " + backend + "\n");
        out.append(String.format("  %-24s %9s %12s %10s %7s%n", "kernel", "calls", "total ms", "mean us", "share"));
        long all = Math.max(1, total);
        byKernel.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[1], a.getValue()[1]))
                .forEach(e -> out.append(String.format("  %-24s %9d %12.1f %10.1f %6.1f%%%n", e.getKey(),
                        e.getValue()[0], e.getValue()[1] / 1e6, e.getValue()[1] / 1e3 / e.getValue()[0],
                        100.0 * e.getValue()[1] / all)));
        out.append(String.format("  %-24s %9s %12.1f%n", "all kernels", "", total / 1e6));
        transfers.forEach((direction, t) -> out.append(String.format("  host transfers, %s: %d, %d bytes%n",
                direction, t[0], t[1])));
        return out.toString();
    }
}
