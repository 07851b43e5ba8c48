package io.bitplane.kernels.ffm;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A JVM whose native library cannot load (here: named by a property but absent) still runs: "auto" says why in one
 * line and takes the Java kernels, and asking for "native" by name fails with that reason. The library loads once
 * per JVM, so the broken case runs in a child JVM.
 */
class NativeFallbackTest {

    /** Run in the child JVM: prints what auto chose, then what asking for native said. */
    public static void main(String[] args) {
        try (Backend auto = Backends.create("auto", 1)) {
            System.out.println("auto=" + auto.name());
        }
        try (Backend b = Backends.create("native", 1)) {
            System.out.println("native=" + b.name());
        } catch (IllegalArgumentException e) {
            System.out.println("native refused: " + e.getMessage());
        }
    }

    @Test
    void withoutTheLibraryAutoUsesJavaAndNativeSaysWhy() throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-Dbitplane.native.library=/nonexistent/libbitplane_kernels.so",
                "-cp", System.getProperty("java.class.path"), NativeFallbackTest.class.getName()));
        Process p = new ProcessBuilder(command).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), err);
        assertTrue(out.contains("auto=java"), out);
        assertTrue(out.contains("native refused: backend 'native' cannot run here: the native kernels are not "
                + "available: -Dbitplane.native.library=/nonexistent/libbitplane_kernels.so is not a file"), out);
        long lines = err.lines().filter(l -> l.startsWith("bitplane: not using the native backend")).count();
        assertEquals(1, lines, "one line says why: " + err);
    }

    @Test
    void inThisJvmAutoTakesTheNativeKernels() {
        NativeAvailability.assumeLoaded();
        try (Backend auto = Backends.create("auto", 1)) {
            assertEquals("native", auto.name());
        }
    }
}
