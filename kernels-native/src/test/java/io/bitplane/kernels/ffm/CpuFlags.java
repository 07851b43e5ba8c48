package io.bitplane.kernels.ffm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The CPU's feature flags as Linux reports them (/proc/cpuinfo), so that tests can check the native library chose
 * the instruction set the CPU has, independently of the library's own detection. Empty elsewhere.
 */
final class CpuFlags {
    private static final Set<String> FLAGS = read();

    private CpuFlags() {
    }

    static boolean has(String... flags) {
        return FLAGS.containsAll(Arrays.asList(flags));
    }

    private static Set<String> read() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                    .filter(line -> line.startsWith("flags"))
                    .findFirst()
                    .map(line -> Arrays.stream(line.substring(line.indexOf(':') + 1).trim().split("\\s+"))
                            .collect(Collectors.toSet()))
                    .orElse(Set.of());
        } catch (IOException e) {
            return Set.of();
        }
    }
}
