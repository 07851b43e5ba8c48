package io.bitplane.cli;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBarConsumer;

/** Where progress bars draw: stderr on a terminal, nowhere otherwise (logs and pipes stay clean). */
final class Progress {
    private Progress() {
    }

    static ProgressBarConsumer consumer() {
        if (System.console() != null && System.console().isTerminal()) {
            return new ConsoleProgressBarConsumer(System.err);
        }
        return new ProgressBarConsumer() {
            @Override
            public int getMaxRenderedLength() {
                return 100;
            }

            @Override
            public void accept(String rendered) {
            }

            @Override
            public void close() {
            }
        };
    }
}
