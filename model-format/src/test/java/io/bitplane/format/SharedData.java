package io.bitplane.format;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Finds the read-only data beside the project root (../shared: models, fixtures, golden outputs). Surefire passes
 * its location as the system property {@code bitplane.shared}. Where it is absent, tests that need it are skipped
 * with a message, except in CI ({@code CI=true}), where missing data is a failure.
 */
public final class SharedData {
    private SharedData() {
    }

    public static Path root() {
        String prop = System.getProperty("bitplane.shared");
        Path p = prop != null ? Path.of(prop) : Path.of("..", "shared");
        if (!Files.isDirectory(p)) {
            if ("true".equals(System.getenv("CI"))) {
                throw new IllegalStateException("shared data not found at " + p.toAbsolutePath());
            }
            Assumptions.abort("shared data not found at " + p.toAbsolutePath());
        }
        return p.normalize();
    }

    public static Path file(String relative) {
        Path p = root().resolve(relative);
        if (!Files.isRegularFile(p)) {
            throw new IllegalStateException("shared file missing: " + p);
        }
        return p;
    }

    public static Path stories260K() {
        return file("models/stories260K.bin");
    }

    public static Path tok512() {
        return file("models/tok512.bin");
    }
}
