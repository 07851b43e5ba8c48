package io.bitplane.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The JSON metadata of a .bpm file (FORMAT.md section 3), typed where the runtime relies on it.
 *
 * @param quantization the recipe that produced the tensors (free-form JSON, shown by {@code inspect})
 * @param source       where the model was converted from (free-form JSON)
 */
public record ModelMetadata(String architecture, ModelConfig config, Vocabulary vocabulary, ObjectNode quantization,
                            ObjectNode source) {

    public ModelMetadata withQuantization(ObjectNode q) {
        return new ModelMetadata(architecture, config, vocabulary, q, source);
    }

    public ModelMetadata withVocabulary(Vocabulary v) {
        return new ModelMetadata(architecture, config, v, quantization, source);
    }

    public ModelMetadata withSource(ObjectNode s) {
        return new ModelMetadata(architecture, config, vocabulary, quantization, s);
    }

    /** A field of {@code source} as text, or "" when it is absent. */
    public String sourceField(String name) {
        JsonNode n = source == null ? null : source.get(name);
        return n == null ? "" : n.asText();
    }
}
