package io.bitplane.kernels.ffm;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendProbe;
import io.bitplane.kernels.Backends;
import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A JVM whose native library cannot load (here: named by a property but absent) still runs: "auto" says why in one
 * line and takes the Java kernels, and asking for "native" by name fails with that reason. The library loads once
 * per JVM, so the broken case runs in a child JVM.
 */
class NativeFallbackTest {

    @Test
    void withoutTheLibraryAutoUsesJavaAndNativeSaysWhy() throws IOException, InterruptedException {
        BackendProbe.Result r = BackendProbe.run("native",
                "-Dbitplane.native.library=/nonexistent/libbitplane_kernels.so");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("auto=java"), r.out());
        assertTrue(r.out().contains("native refused: backend 'native' cannot run here: the native kernels are not "
                + "available: -Dbitplane.native.library=/nonexistent/libbitplane_kernels.so is not a file"), r.out());
        long lines = r.err().lines().filter(l -> l.startsWith("bitplane: not using the native backend")).count();
        assertEquals(1, lines, "one line says why: " + r.err());
    }

    @Test
    void inThisJvmAutoTakesTheNativeKernels() {
        NativeAvailability.assumeLoaded();
        try (Backend auto = Backends.create("auto", 1)) {
            assertEquals("native", auto.name());
        }
    }
}
