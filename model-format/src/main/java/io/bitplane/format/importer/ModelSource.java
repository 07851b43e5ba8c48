package io.bitplane.format.importer;

import io.bitplane.format.ModelMetadata;

import java.io.IOException;
import java.util.List;

/**
 * A model opened by an importer: metadata (config, vocabulary, where it came from) and its tensors in GGUF naming
 * and the llama2.c/GGUF rotary order. Closing releases the mapped source file.
 */
public interface ModelSource extends AutoCloseable {
    ModelMetadata metadata();

    List<SourceTensor> tensors();

    @Override
    void close() throws IOException;
}
