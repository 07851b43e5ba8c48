package io.bitplane.cli;

import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * Finds the model a command runs on: {@code --model}, then the BITPLANE_MODEL environment variable, then
 * {@code models/stories260K.bin} in the project, then {@code ../shared/models/stories260K.bin} beside it. The
 * project root is the system property {@code bitplane.home} (set by ./bitplane), else the working directory.
 */
final class ModelLocator {
    private ModelLocator() {
    }

    static final String DEFAULT_MODEL = "stories260K.bin";

    static Path home() {
        return Path.of(System.getProperty("bitplane.home", "."));
    }

    static Path locate(Path explicit) throws NoSuchFileException {
        if (explicit != null) {
            return explicit;
        }
        String env = System.getenv("BITPLANE_MODEL");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        List<Path> candidates = List.of(home().resolve("models").resolve(DEFAULT_MODEL),
                home().resolve("..").resolve("shared").resolve("models").resolve(DEFAULT_MODEL));
        for (Path p : candidates) {
            if (Files.isRegularFile(p)) {
                return p.normalize();
            }
        }
        throw new NoSuchFileException("no model given and none found", null,
                "pass --model, set BITPLANE_MODEL, or put " + DEFAULT_MODEL + " in models/ (looked in " + candidates
                        + ")");
    }

    /** The validation text of the perplexity protocol, beside the project (null when absent). */
    static Path validationText() {
        Path p = home().resolve("..").resolve("shared").resolve("data").resolve("tinystories_validation_head.txt");
        return Files.isRegularFile(p) ? p.normalize() : null;
    }
}
