package io.bitplane.opencl;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Compiled programs are kept per device and source; a damaged entry is rebuilt, never trusted. */
class ProgramCacheTest {
    @Test
    void theSecondStartSkipsTheCompilerAndADamagedEntryIsRebuilt(@TempDir Path dir) throws Exception {
        OpenClAvailability.assumePlatform();
        String before = System.getProperty("bitplane.opencl.cache");
        System.setProperty("bitplane.opencl.cache", dir.toString());
        try {
            try (OpenClBackend first = new OpenClBackend(OpenClDevice.pick(0))) {
                assertFalse(first.description().contains("kernels from cache"), first.description());
            }
            List<Path> entries;
            try (var files = Files.list(dir)) {
                entries = files.toList();
            }
            assertEquals(1, entries.size(), entries.toString());
            try (OpenClBackend second = new OpenClBackend(OpenClDevice.pick(0))) {
                assertTrue(second.description().contains("kernels from cache"), second.description());
            }
            Files.write(entries.get(0), new byte[] {1, 2, 3, 4});
            try (OpenClBackend third = new OpenClBackend(OpenClDevice.pick(0))) {
                assertFalse(third.description().contains("kernels from cache"), third.description());
                float[] out = new float[3];
                var b = third.allocate(3);
                third.write(new float[] {1, 2, 3}, 0, b, 0, 3);
                third.add(b, b, 3);
                third.read(b, 0, out, 0, 3);
                assertEquals(List.of(2f, 4f, 6f), List.of(out[0], out[1], out[2]), "the rebuilt program runs");
            }
            try (OpenClBackend fourth = new OpenClBackend(OpenClDevice.pick(0))) {
                assertTrue(fourth.description().contains("kernels from cache"), "the entry was replaced");
            }
        } finally {
            if (before == null) {
                System.clearProperty("bitplane.opencl.cache");
            } else {
                System.setProperty("bitplane.opencl.cache", before);
            }
        }
    }
}
