package io.bitplane.opencl;

import io.bitplane.format.SharedData;
import io.bitplane.runtime.GenerationRequest;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Session;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A server or a notebook loads and closes models for days: each close must give back the device memory, the
 * context, queue and program, and the threads and files the driver opened for them.
 */
class OpenClLifecycleTest {
    @Test
    void loadingAndClosingAModelManyTimesLeavesNothingBehind() throws IOException {
        OpenClAvailability.assumePlatform();
        ModelOptions options = ModelOptions.defaults().withBackend("opencl").withTokenizer(SharedData.tok512());
        long[] warm = null;
        for (int i = 0; i < 25; i++) {
            try (Model m = Model.open(SharedData.stories260K(), options); Session s = m.newSession()) {
                assertTrue(m.backendName().startsWith("opencl"), m.backendName());
                s.generate(GenerationRequest.of("Once upon a time", 8), token -> { });
                assertTrue(DeviceMemory.LIVE_BUFFERS.get() > 0, "the model's weights are on the device");
            }
            assertEquals(0, DeviceMemory.LIVE_BUFFERS.get(), "device buffers after close, round " + i);
            assertEquals(0, DeviceMemory.LIVE_BYTES.get(), "device bytes after close, round " + i);
            assertEquals(0, OpenClBackend.LIVE_BACKENDS.get(), "OpenCL contexts after close, round " + i);
            if (i == 4) {
                warm = process(); // after the driver and the JIT have settled
            }
        }
        long[] end = process();
        assertTrue(end[0] <= warm[0] + 2, "threads grew from " + warm[0] + " to " + end[0]);
        assertTrue(end[1] <= warm[1] + 4, "open files grew from " + warm[1] + " to " + end[1]);
        assertTrue(end[2] <= warm[2] + (96L << 20), "resident memory grew from " + (warm[2] >> 20) + " MiB to "
                + (end[2] >> 20) + " MiB");
    }

    /** Native threads, open file descriptors and resident bytes of this process (Linux /proc). */
    private static long[] process() throws IOException {
        System.gc();
        long threads;
        long files;
        try (var t = Files.list(Path.of("/proc/self/task")); var f = Files.list(Path.of("/proc/self/fd"))) {
            threads = t.count();
            files = f.count();
        }
        long rss = 0;
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                rss = Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        return new long[] {threads, files, rss};
    }
}
