package io.bitplane.cli;

import io.bitplane.runtime.Model;
import io.bitplane.runtime.Pooling;
import io.bitplane.runtime.Session;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code bitplane embed}: each text's embedding (its final-norm hidden states pooled, at unit length, as the server's
 * /v1/embeddings gives it) on stdout, one JSON array per line, as llama.cpp's llama-embedding prints them.
 */
@Command(name = "embed", mixinStandardHelpOptions = true, description = "Print the embeddings of texts.")
final class EmbedCommand implements Callable<Integer> {
    @Mixin
    ModelArgs modelArgs;

    @Option(names = "--text", required = true, description = "A text to embed (repeatable: one line out each).")
    List<String> texts;

    @Option(names = "--pooling", description = "mean, or last (the last token's: Qwen3-Embedding). Default: as the "
            + "model file says (a GGUF's pooling_type), else mean.")
    String pooling;

    @Override
    public Integer call() throws Exception {
        try (Model model = Model.open(modelArgs.resolvedModel(), modelArgs.options());
             Session session = model.newSession()) {
            Pooling p = pooling(pooling != null ? pooling : model.metadata().sourceField("pooling"));
            for (String text : texts) {
                if (text.isEmpty()) {
                    throw new IllegalArgumentException("--text is empty: nothing to embed");
                }
                float[] e = session.embed(model.tokenizer().encode(text, true, false), p);
                StringBuilder line = new StringBuilder("[");
                for (int i = 0; i < e.length; i++) {
                    line.append(i == 0 ? "" : ",").append(e[i]);  // Float's shortest text that reads back the same
                }
                System.out.println(line.append(']'));
            }
        }
        return 0;
    }

    /** A pooling by name: "" and "none" (a file that names none) are the mean. */
    private static Pooling pooling(String name) {
        return switch (name) {
            case "mean", "", "none" -> Pooling.MEAN;
            case "last" -> Pooling.LAST;
            default -> throw new IllegalArgumentException("pooling '" + name + "' is not supported (mean and last "
                    + "are); give --pooling");
        };
    }
}
