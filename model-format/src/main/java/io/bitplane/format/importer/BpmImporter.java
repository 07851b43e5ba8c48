package io.bitplane.format.importer;

import io.bitplane.format.BpmFile;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.ModelMetadata;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.quant.QuantSpec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A .bpm file as a conversion source: re-encode it (to F32, to another encoding, with another recipe). */
public final class BpmImporter {
    private BpmImporter() {
    }

    /** {@code tokenizer} (may be null) replaces the file's vocabulary. */
    public static ModelSource open(Path path, Path tokenizer) throws IOException {
        BpmFile file = BpmFile.open(path);
        try {
            return read(file, path, tokenizer);
        } catch (IOException | RuntimeException e) {
            file.close();
            throw e;
        }
    }

    private static ModelSource read(BpmFile file, Path path, Path tokenizer) throws IOException {
        List<SourceTensor> tensors = new ArrayList<>();
        var source = MetadataJson.newObject();
        source.put("format", "bpm");
        source.put("path", path.getFileName().toString());
        source.set("converted_from", file.metadata().source());
        ModelMetadata metadata = file.metadata().withSource(source).withQuantization(MetadataJson.newObject());
        if (tokenizer != null) {
            metadata = metadata.withVocabulary(TokenizerFiles.read(tokenizer, metadata.config().vocabSize()));
        }
        for (BpmTensor t : file.tensors()) {
            TensorSpec s = t.spec();
            // Method is irrelevant for a lossless copy; the encoding and group identify the stored form.
            QuantSpec nativeSpec = new QuantSpec(s.encoding(), s.groupSize(), QuantSpec.Method.CONVERT);
            tensors.add(new EncodedSourceTensor(s.name(), s.shape(), nativeSpec, () -> {
                EncodedTensor copy = t.copy();
                return new EncodedTensor(TensorSpec.of(s.name(), s.encoding(), s.groupSize(), s.shape()),
                        copy.bytes());
            }));
        }
        return new OpenedModel(metadata, tensors, file::close);
    }
}
