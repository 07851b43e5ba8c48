package io.bitplane.cli;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;
import org.junit.jupiter.api.Assumptions;

/**
 * Whether an optional backend starts here: the native kernels are built only where gcc is, OpenCL needs a driver
 * (PoCL). In CI, where .ci/run installs both, they must start.
 */
final class BackendHere {
    private BackendHere() {
    }

    static boolean starts(String name) {
        try (Backend b = Backends.create(name, 1)) {
            return true;
        } catch (IllegalArgumentException e) {
            if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                throw e;
            }
            return false;
        }
    }

    static void assume(String name) {
        Assumptions.assumeTrue(starts(name), "the " + name + " backend cannot start here");
    }
}
