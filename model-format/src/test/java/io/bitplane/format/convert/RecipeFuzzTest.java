package io.bitplane.format.convert;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.bitplane.format.quant.QuantSpec;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Any recipe file ({@code convert --recipe}, {@code plan --output}) reads as a recipe or fails with an
 * IllegalArgumentException that names the file; a recipe read chooses a spec for any tensor name without failing.
 */
class RecipeFuzzTest {
    private static final Path FILE;

    static {
        try {
            FILE = Files.createTempDirectory("bitplane-fuzz").resolve("recipe.json");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @FuzzTest(maxDuration = "4m")
    void anyRecipeFile(byte[] bytes) throws IOException {
        Files.write(FILE, bytes);
        Recipe r;
        try {
            r = Recipe.read(FILE);
        } catch (IllegalArgumentException refused) {
            assertTrue(refused.getMessage().startsWith(FILE.toString()), refused.getMessage());
            return;
        }
        for (String name : new String[] {"blk.0.attn_q.weight", "token_embd.weight", "output_norm.weight", ""}) {
            QuantSpec spec = r.choose(name, new long[] {64, 64}, QuantSpec.parse("f32"));
            r.activationsFor(new long[] {64, 64}, spec);
            r.layoutFor(spec.encoding());
        }
    }
}
