package io.bitplane.cli;

import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Perplexity;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.runtime.calibration.CalibratedQuantizer;
import io.bitplane.runtime.calibration.Calibration;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** Calibration on the command line: paragraph ranges of a text and a progress bar over the runs. */
final class CalibrationRun {
    private CalibrationRun() {
    }

    /**
     * Prepares the GPTQ quantizer for converting {@code source} under {@code recipe}: one calibration run over the
     * chosen paragraphs (one per layer when calibrating layer by layer), with a progress bar.
     */
    static CalibratedQuantizer prepare(Path model, Path tokenizer, ModelSource source, Recipe recipe, Path text,
                                       String paragraphs, CalibratedQuantizer.Options calibration)
            throws IOException, InterruptedException {
        List<String> chosen = paragraphs(text, paragraphs, "--calibrate-paragraphs");
        long start = System.nanoTime();
        CalibratedQuantizer q;
        // Converted on load with the source's own encodings (auto): calibration starts from the unquantized
        // model. Paragraphs run on parallel sessions, so each session's kernels keep to one thread.
        ModelOptions options = ModelOptions.defaults().withTokenizer(tokenizer).withThreads(1);
        try (ProgressBar bar = new ProgressBarBuilder().setTaskName("calibrate").setInitialMax(chosen.size())
                .setStyle(ProgressBarStyle.ASCII).setUnit(" paragraphs", 1).setConsumer(Progress.consumer())
                .build()) {
            q = CalibratedQuantizer.prepare(model, options, source, recipe, chosen,
                    Runtime.getRuntime().availableProcessors(), calibration,
                    new CalibratedQuantizer.Listener() {
                        @Override
                        public void stage(int stage, int stages, String what) {
                            bar.maxHint((long) stages * chosen.size());
                            bar.setExtraMessage("layer " + (stage + 1) + "/" + stages);
                        }

                        @Override
                        public void paragraph() {
                            bar.step();
                        }

                        @Override
                        public void note(String line) {
                            System.err.println(line);
                        }

                        @Override
                        public void distillStep(int step, int steps, double meanKl) {
                            if (step == 1) {
                                bar.maxHint(bar.getCurrent() + steps);
                            }
                            bar.step();
                            bar.setExtraMessage(String.format(Locale.ROOT, "distill %d/%d KL %.4f", step, steps,
                                    meanKl));
                        }
                    });
        }
        if (System.getenv("BITPLANE_DEBUG") != null) {
            q.awqReport().forEach(System.err::println);
        }
        Calibration first = q.firstRun();
        System.err.printf(Locale.ROOT, "calibrated %d matrices with GPTQ on %d paragraphs of %s (%d tokens, "
                        + "unquantized perplexity %.4f) in %.1f s%n", q.tensors().size(), chosen.size(), text,
                first.tokens(), first.perplexity(),
                (System.nanoTime() - start) / 1e9);
        if (q.distilled() != null) {
            System.err.printf(Locale.ROOT, "distilled %d matrices: KL %.4f -> %.4f nats per position%n",
                    q.distilled().tensors().size(), q.distilled().firstKl(), q.distilled().lastKl());
        }
        return q;
    }

    /** Paragraphs A:B of a text file, per the perplexity protocol; {@code option} names the range in errors. */
    static List<String> paragraphs(Path text, String range, String option) throws IOException {
        List<String> all = Perplexity.paragraphs(Files.readString(text));
        if (all.isEmpty()) {
            throw new IllegalArgumentException(text + ": no paragraphs (the text is empty)");
        }
        int[] r;
        try {
            r = PerplexityCommand.range(range, all.size());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(text + ": " + e.getMessage().replace("--paragraphs", option));
        }
        return all.subList(r[0], r[1]);
    }
}
