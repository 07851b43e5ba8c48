package io.bitplane.runtime.calibration;

import io.bitplane.format.EncodedTensor;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A model with some tensors replaced in memory (say, quantized differently), without writing a file; and the
 * unquantized .bpm copy of a source that such models are opened from many times.
 */
public final class ModelVariant {
    private ModelVariant() {
    }

    /** Opens {@code model} with {@code substitutes} (by tensor name, same shapes, any encodings) in place. */
    public static Model open(Path model, ModelOptions options, Map<String, EncodedTensor> substitutes)
            throws IOException {
        return Model.open(model, options, b -> new ObservingBackend(b, substitutes, null));
    }

    /**
     * Writes {@code source} as it stores each tensor (no quantization) to a temporary .bpm file, which the caller
     * deletes. Tools that open a model many times open this copy, rather than converting the source on every load.
     */
    public static Path unquantizedCopy(ModelSource source) throws IOException {
        Path copy = Files.createTempFile("bitplane-unquantized-", ".bpm");
        try {
            Converter.convert(source, Recipe.auto(), copy, Converter.Progress.NONE);
            return copy;
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(copy);
            throw e;
        }
    }
}
