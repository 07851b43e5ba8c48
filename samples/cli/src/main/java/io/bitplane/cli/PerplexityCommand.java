package io.bitplane.cli;

import io.bitplane.format.MetadataJson;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.Perplexity;
import io.bitplane.runtime.Score;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code bitplane perplexity}: the project's perplexity protocol on a text file. */
@Command(name = "perplexity", mixinStandardHelpOptions = true,
        description = "Perplexity on paragraphs of a text (split on blank lines, each scored alone from BOS, "
                + "truncated to 512 tokens).")
final class PerplexityCommand implements Callable<Integer> {
    @Mixin
    ModelArgs modelArgs;

    @Option(names = "--text", description = "The text (default: the TinyStories validation head beside the "
            + "project).")
    Path text;

    @Option(names = "--paragraphs", defaultValue = "0:500", description = "A:B, paragraphs A (inclusive) to B "
            + "(exclusive), counting from 0. Default: ${DEFAULT-VALUE}.")
    String paragraphs;

    @Option(names = "--sessions", description = "Sessions scoring paragraphs in parallel (default: available "
            + "processors).")
    Integer sessions;

    @Option(names = "--json", description = "Print the result as JSON.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        Path textPath = text != null ? text : ModelLocator.validationText();
        if (textPath == null) {
            throw new IllegalArgumentException("no --text given and the default validation text was not found");
        }
        List<String> all = Perplexity.paragraphs(Files.readString(textPath));
        int[] range = range(paragraphs, all.size());
        List<String> chosen = all.subList(range[0], range[1]);
        int n = sessions != null ? sessions : Runtime.getRuntime().availableProcessors();
        if (n < 1) {
            throw new IllegalArgumentException("--sessions must be >= 1");
        }
        Path modelPath = modelArgs.resolvedModel();
        long start = System.nanoTime();
        Score score;
        try (Model model = Model.open(modelPath, modelArgs.options());
             ProgressBar bar = new ProgressBarBuilder().setTaskName("perplexity").setInitialMax(chosen.size())
                     .setStyle(ProgressBarStyle.ASCII).setUnit(" paragraphs", 1).setConsumer(Progress.consumer())
                     .build()) {
            score = Perplexity.evaluate(model, chosen, n, i -> bar.step());
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        if (json) {
            var o = MetadataJson.newObject();
            o.put("model", modelPath.toString());
            o.put("text", textPath.toString());
            o.put("paragraphs", range[0] + ":" + range[1]);
            o.put("perplexity", score.perplexity());
            o.put("negative_log_likelihood", score.negativeLogLikelihood());
            o.put("scored_tokens", score.scoredTokens());
            o.put("seconds", seconds);
            o.put("tokens_per_second", score.scoredTokens() / seconds);
            System.out.println(o.toPrettyString());
        } else {
            System.out.printf(Locale.ROOT, "perplexity %.4f over %d tokens (paragraphs %d:%d of %s)%n",
                    score.perplexity(), score.scoredTokens(), range[0], range[1], textPath);
            System.err.printf(Locale.ROOT, "%.1f s, %.0f tokens/s%n", seconds, score.scoredTokens() / seconds);
        }
        return 0;
    }

    /** Parses A:B (either side may be empty: from the start, to the end) against {@code count} paragraphs. */
    static int[] range(String text, int count) {
        String[] parts = text.split(":", -1);
        try {
            if (parts.length != 2) {
                throw new NumberFormatException();
            }
            int a = parts[0].isEmpty() ? 0 : Integer.parseInt(parts[0].trim());
            int b = parts[1].isEmpty() ? count : Integer.parseInt(parts[1].trim());
            if (a < 0 || b > count || a >= b) {
                throw new IllegalArgumentException("--paragraphs " + text + " is outside 0:" + count
                        + " (the text has " + count + " paragraphs) or empty");
            }
            return new int[] {a, b};
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--paragraphs must be A:B (for example 0:500), not '" + text + "'");
        }
    }
}
