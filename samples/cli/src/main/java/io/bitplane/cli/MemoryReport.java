package io.bitplane.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** Resident memory of this process (Linux /proc), for the stats commands print. */
final class MemoryReport {
    private MemoryReport() {
    }

    /** Resident set size in bytes, or -1 where /proc is not there. */
    static long residentBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (Exception e) {
            return -1;
        }
        return -1;
    }

    static String mb(long bytes) {
        return bytes < 0 ? "n/a" : String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }
}
