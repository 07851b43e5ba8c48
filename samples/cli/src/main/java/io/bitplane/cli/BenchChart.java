package io.bitplane.cli;

import java.util.List;
import java.util.Locale;

/** The chart of {@code bitplane bench}: per kernel, the roofline (light) and what was achieved (dark), as SVG. */
final class BenchChart {
    private BenchChart() {
    }

    static String svg(List<BenchCommand.Result> results, String title) {
        int rowHeight = 34;
        int left = 230;
        int width = 900;
        int barWidth = width - left - 40;
        int height = 70 + rowHeight * results.size() + 30;
        double max = results.stream().mapToDouble(BenchCommand.Result::roofline).max().orElse(1);
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "font-family=\"sans-serif\" font-size=\"13\">%n", width, height));
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        s.append(String.format(Locale.ROOT, "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">"
                + "Matrix-vector weights/s against the memory roofline</text>%n"));
        s.append(String.format(Locale.ROOT, "<text x=\"10\" y=\"42\" fill=\"#555\">%s</text>%n", escape(title)));
        int y = 60;
        for (BenchCommand.Result r : results) {
            double roof = r.roofline() / max * barWidth;
            double got = Math.min(r.weightsPerSecond(), max) / max * barWidth;
            s.append(String.format(Locale.ROOT, "<text x=\"10\" y=\"%d\">%s</text>%n", y + 18, escape(r.label())));
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"22\" "
                    + "fill=\"#cfe0f3\"/>%n", left, y + 4, roof));
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"22\" "
                    + "fill=\"#2f6db5\"/>%n", left, y + 4, got));
            s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" fill=\"#222\">%.1f / %.1f G weights/s "
                            + "(%.0f%%)</text>%n", left + Math.max(got, 4) + 6, y + 20, r.weightsPerSecond() / 1e9,
                    r.roofline() / 1e9, 100 * r.weightsPerSecond() / r.roofline()));
            y += rowHeight;
        }
        s.append(String.format(Locale.ROOT, "<text x=\"10\" y=\"%d\" fill=\"#555\">dark: achieved; light: "
                + "roofline = 8 x read bandwidth / bits per weight (scales included)</text>%n", y + 20));
        s.append("</svg>\n");
        return s.toString();
    }

    private static String escape(String text) {
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
