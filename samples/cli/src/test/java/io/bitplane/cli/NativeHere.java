package io.bitplane.cli;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;
import org.junit.jupiter.api.Assumptions;

/** Whether the native kernels start here: they are built only where gcc is; in CI they must be. */
final class NativeHere {
    private NativeHere() {
    }

    static boolean starts() {
        try (Backend b = Backends.create("native", 1)) {
            return true;
        } catch (IllegalArgumentException e) {
            if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                throw e;
            }
            return false;
        }
    }

    static void assume() {
        Assumptions.assumeTrue(starts(), "the native kernels are not built here (no gcc)");
    }
}
