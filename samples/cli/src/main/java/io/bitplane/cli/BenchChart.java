package io.bitplane.cli;

import java.util.List;
import java.util.Locale;

/**
 * The chart of {@code bitplane bench}, as SVG: sections (the kernels' weights/s, decoding's tokens/s), each bar the
 * roofline (light) and what was achieved (dark), every section on its own scale.
 */
final class BenchChart {
    private BenchChart() {
    }

    /** One bar: {@code text} is printed beside it. */
    record Bar(String label, double achieved, double roofline, String text) {
    }

    record Section(String heading, String footnote, List<Bar> bars) {
    }

    private static final int ROW_HEIGHT = 34;
    private static final int LEFT = 260;
    private static final int WIDTH = 940;

    static String svg(String title, List<Section> sections) {
        int barWidth = WIDTH - LEFT - 40;
        int height = 50 + sections.stream().mapToInt(sec -> 30 + ROW_HEIGHT * sec.bars().size() + 30).sum();
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "font-family=\"sans-serif\" font-size=\"13\">%n", WIDTH, height));
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        s.append(String.format(Locale.ROOT, "<text x=\"10\" y=\"22\" fill=\"#555\">%s</text>%n", escape(title)));
        int y = 40;
        for (Section sec : sections) {
            s.append(String.format(Locale.ROOT, "<text x=\"10\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">%s"
                    + "</text>%n", y + 18, escape(sec.heading())));
            y += 30;
            double max = sec.bars().stream().mapToDouble(b -> Math.max(b.roofline(), b.achieved())).max().orElse(1);
            for (Bar b : sec.bars()) {
                double roof = b.roofline() / max * barWidth;
                double got = b.achieved() / max * barWidth;
                s.append(String.format(Locale.ROOT, "<text x=\"10\" y=\"%d\">%s</text>%n", y + 18, escape(b.label())));
                s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"22\" "
                        + "fill=\"#cfe0f3\"/>%n", LEFT, y + 4, roof));
                s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"22\" "
                        + "fill=\"#2f6db5\"/>%n", LEFT, y + 4, got));
                s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" fill=\"#222\">%s</text>%n",
                        LEFT + Math.max(got, 4) + 6, y + 20, escape(b.text())));
                y += ROW_HEIGHT;
            }
            s.append(String.format(Locale.ROOT, "<text x=\"10\" y=\"%d\" fill=\"#555\">%s</text>%n", y + 16,
                    escape(sec.footnote())));
            y += 30;
        }
        s.append("</svg>\n");
        return s.toString();
    }

    private static String escape(String text) {
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
