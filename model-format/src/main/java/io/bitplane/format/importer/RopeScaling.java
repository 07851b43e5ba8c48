package io.bitplane.format.importer;

import com.fasterxml.jackson.databind.JsonNode;
import io.bitplane.format.BpmFormatException;
import io.bitplane.format.ModelConfig;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * A Hugging Face config's {@code rope_scaling} as one divisor per rotary frequency ({@link
 * ModelConfig#ropeFreqFactors()}), computed as llama.cpp's convert_hf_to_gguf.py does for the rope_freqs.weight it
 * writes into GGUF files:
 * <ul>
 *   <li>{@code "llama3"} (Llama 3.1 to 3.3): with wavelength {@code 2 pi / freq} and the original context C
 *       ({@code original_max_position_embeddings}, default 8192), frequencies of wavelength below
 *       {@code C / high_freq_factor} (default 4) are kept (factor 1), those above {@code C / low_freq_factor}
 *       (default 1) are divided by {@code factor} (default 8), and those between by
 *       {@code 1 / ((1 - s) / factor + s)}, {@code s = (C / wavelength - low) / (high - low)};
 *   <li>{@code "linear"}: every frequency divided by {@code factor}.
 * </ul>
 * Other kinds (YaRN, dynamic, longrope) are refused by name.
 */
final class RopeScaling {
    private RopeScaling() {
    }

    static float[] factors(Path path, JsonNode scaling, ModelConfig c) throws BpmFormatException {
        String type = scaling.path("rope_type").asText(scaling.path("type").asText(""));
        double factor = scaling.path("factor").asDouble(type.equals("llama3") ? 8 : 1);
        int half = c.headSize() / 2;
        float[] out = new float[half];
        switch (type) {
            case "linear" -> Arrays.fill(out, (float) factor);
            case "llama3" -> {
                double low = scaling.path("low_freq_factor").asDouble(1);
                double high = scaling.path("high_freq_factor").asDouble(4);
                double original = scaling.path("original_max_position_embeddings").asDouble(8192);
                if (!(high > low)) {
                    throw new BpmFormatException(path + ": rope_scaling: high_freq_factor " + high
                            + " must be above low_freq_factor " + low);
                }
                for (int i = 0; i < half; i++) {
                    double freq = 1.0 / Math.pow(c.ropeTheta(), 2.0 * i / c.headSize());
                    double wavelength = 2 * Math.PI / freq;
                    if (wavelength < original / high) {
                        out[i] = 1;
                    } else if (wavelength > original / low) {
                        out[i] = (float) factor;
                    } else {
                        double s = (original / wavelength - low) / (high - low);
                        out[i] = (float) (1 / ((1 - s) / factor + s));
                    }
                }
            }
            default -> throw new BpmFormatException(path + ": rope_scaling type '" + type
                    + "' is not supported yet (llama3 and linear are)");
        }
        return out;
    }
}
