package io.bitplane.format.convert;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmWriter;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.ModelMetadata;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.SourceTensor;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Converts any {@link ModelSource} to a .bpm file under a {@link Recipe}, one tensor at a time. A tensor whose
 * source already is in the chosen encoding and group is copied bit for bit; any other is dequantized to floats
 * and quantized.
 */
public final class Converter {
    private Converter() {
    }

    /** Told before each tensor is produced (index counts from 0). */
    public interface Progress {
        void tensor(int index, int count, TensorSpec spec);

        Progress NONE = (i, n, s) -> {
        };
    }

    /**
     * Turns one tensor's floats into the chosen encoding. The default rounds to nearest ({@link Quantizer});
     * a calibrated quantizer (GPTQ) plugs in here.
     */
    public interface TensorQuantizer {
        EncodedTensor quantize(String name, long[] shape, float[] values, QuantSpec spec, ActivationHint activations);

        /** The method recorded in the metadata for this tensor, e.g. "clip_search" or "gptq+clip_search". */
        default String describe(String name, QuantSpec spec) {
            return spec.method().name().toLowerCase(java.util.Locale.ROOT);
        }

        /** Whether this quantizer supplies the tensor even where the source could be copied without loss. */
        default boolean replaces(String name) {
            return false;
        }

        TensorQuantizer ROUND_TO_NEAREST = Quantizer::quantize;
    }

    public static void convert(ModelSource source, Recipe recipe, Path output, Progress progress) throws IOException {
        convert(source, recipe, output, progress, TensorQuantizer.ROUND_TO_NEAREST);
    }

    public static void convert(ModelSource source, Recipe recipe, Path output, Progress progress,
                               TensorQuantizer quantizer) throws IOException {
        List<SourceTensor> tensors = source.tensors();
        List<TensorSpec> specs = new ArrayList<>();
        List<QuantSpec> chosen = new ArrayList<>();
        ObjectNode quantization = recipe.toJson();
        ObjectNode perTensor = quantization.putObject("tensors");
        for (SourceTensor t : tensors) {
            QuantSpec spec = recipe.choose(t.name(), t.shape(), t.nativeSpec());
            TensorSpec ts = new TensorSpec(t.name(), t.shape(), spec.encoding(), spec.groupSize(),
                    recipe.layoutFor(spec.encoding()), recipe.activationsFor(t.shape(), spec));
            String problem = ts.problem();
            if (problem != null) {
                throw new IllegalArgumentException("tensor " + t.name() + ": cannot encode as " + spec + ": "
                        + problem);
            }
            specs.add(ts);
            chosen.add(spec);
            boolean kept = isLossless(t.nativeSpec(), spec) && !quantizer.replaces(t.name());
            perTensor.putObject(t.name()).put("spec", spec.toString())
                    .put("quantizer", kept ? t.nativeQuantizer() : quantizer.describe(t.name(), spec));
        }
        ModelMetadata metadata = source.metadata().withQuantization(quantization);
        try (BpmWriter writer = BpmWriter.create(output, metadata, specs)) {
            for (int i = 0; i < tensors.size(); i++) {
                SourceTensor t = tensors.get(i);
                TensorSpec ts = specs.get(i);
                progress.tensor(i, tensors.size(), ts);
                QuantSpec spec = chosen.get(i);
                EncodedTensor encoded; // in layout 0; packed below where the spec asks for it
                if (isLossless(t.nativeSpec(), spec) && !quantizer.replaces(t.name())) {
                    encoded = new EncodedTensor(ts.withLayout(TensorSpec.LAYOUT_CANONICAL), t.lossless().bytes());
                } else {
                    encoded = quantizer.quantize(t.name(), t.shape(), t.floats(), spec, ts.activations());
                }
                writer.write(ts.layout() == TensorSpec.LAYOUT_PACKED ? PackedCodes.relayout(encoded) : encoded);
            }
            writer.finish();
        }
    }

    /** The source's stored form is exactly the target: same encoding and group size. */
    public static boolean isLossless(QuantSpec source, QuantSpec target) {
        return source.encoding() == target.encoding() && source.groupSize() == target.groupSize();
    }
}
