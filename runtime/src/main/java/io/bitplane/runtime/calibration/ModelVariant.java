package io.bitplane.runtime.calibration;

import io.bitplane.format.EncodedTensor;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/** A model with some tensors replaced in memory (say, quantized differently), without writing a file. */
public final class ModelVariant {
    private ModelVariant() {
    }

    /** Opens {@code model} with {@code substitutes} (by tensor name, same shapes, any encodings) in place. */
    public static Model open(Path model, ModelOptions options, Map<String, EncodedTensor> substitutes)
            throws IOException {
        return Model.open(model, options, b -> new ObservingBackend(b, substitutes, null));
    }
}
