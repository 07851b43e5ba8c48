package io.bitplane.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one line the backends print where the JVM's JIT would slow the Java kernels down. */
class JitWarningTest {
    @Test
    void warnsWithoutTieredCompilationOnly() {
        String warning = Backends.jitWarning("false");
        assertNotNull(warning);
        assertTrue(warning.contains("-XX:-TieredCompilation"), warning);
        assertNull(Backends.jitWarning("true"));
        assertNull(Backends.jitWarning(null));
    }
}
