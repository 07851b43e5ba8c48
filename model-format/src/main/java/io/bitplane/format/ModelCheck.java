package io.bitplane.format;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Checks that a file's tensors are the ones its metadata describes: every tensor a Llama decoder of that config
 * needs, with the right shape, nothing unexplained, and a vocabulary of the configured size.
 */
public final class ModelCheck {
    private ModelCheck() {
    }

    /** One line per problem, each naming the file and the tensor or field; empty when consistent. */
    public static List<String> problems(BpmFile file) {
        List<String> out = new ArrayList<>();
        ModelConfig c = file.metadata().config();
        String where = file.path().toString();
        if (!"llama".equals(file.metadata().architecture())) {
            out.add(where + ": architecture '" + file.metadata().architecture() + "' is not supported");
            return out;
        }
        Set<String> expected = new HashSet<>();
        for (LlamaTensors.Expected e : LlamaTensors.expected(c)) {
            expected.add(e.name());
            if (!file.has(e.name())) {
                out.add(where + ": tensor " + e.name() + " is missing (config: " + c + ")");
                continue;
            }
            long[] shape = file.tensors().stream().filter(t -> t.name().equals(e.name())).findFirst()
                    .orElseThrow().spec().shape();
            if (!Arrays.equals(shape, e.shape())) {
                out.add(where + ": tensor " + e.name() + " has shape " + Arrays.toString(shape)
                        + " but the metadata config implies " + Arrays.toString(e.shape()));
            }
        }
        for (BpmTensor t : file.tensors()) {
            if (!expected.contains(t.name())) {
                out.add(where + ": tensor " + t.name() + " is not part of a llama model of this config"
                        + (t.name().equals(LlamaTensors.OUTPUT) ? " (config.tied_embeddings is true)" : ""));
            }
        }
        Vocabulary v = file.metadata().vocabulary();
        if (v != null && v.size() != c.vocabSize()) {
            out.add(where + ": tokenizer has " + v.size() + " tokens but config.vocab_size is " + c.vocabSize());
        }
        return out;
    }
}
