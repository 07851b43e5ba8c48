package io.bitplane.kernels;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the backend lookup does in a fresh JVM: a backend's library loads once per JVM, so a test of a broken
 * installation (a library named by a property but absent) starts a child JVM that runs {@link #main}.
 */
public final class BackendProbe {
    private BackendProbe() {
    }

    /** What the child printed on stdout and stderr, and its exit code. */
    public record Result(int exit, String out, String err) {
    }

    /** In the child JVM: prints {@code auto=NAME}, then {@code BACKEND=NAME} or {@code BACKEND refused: WHY}. */
    public static void main(String[] args) {
        try (Backend auto = Backends.create("auto", 1)) {
            System.out.println("auto=" + auto.name());
        }
        String name = args[0];
        try (Backend b = Backends.create(name, 1)) {
            System.out.println(name + "=" + b.name());
        } catch (IllegalArgumentException e) {
            System.out.println(name + " refused: " + e.getMessage());
        }
    }

    /** Runs {@link #main} for {@code backend} in a child JVM with this JVM's class path and the given flags. */
    public static Result run(String backend, String... jvmFlags) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow"));
        command.addAll(List.of(jvmFlags));
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), BackendProbe.class.getName(), backend));
        Process p = new ProcessBuilder(command).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Result(p.waitFor(), out, err);
    }
}
