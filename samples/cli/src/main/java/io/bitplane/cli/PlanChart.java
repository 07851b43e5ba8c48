package io.bitplane.cli;

import java.util.List;
import java.util.Locale;

/**
 * The chart of {@code bitplane plan}, as SVG: perplexity (log scale) against bits per weight, for the planner's
 * frontier (predicted and measured) and for each uniform encoding (measured).
 */
final class PlanChart {
    private PlanChart() {
    }

    private static final int WIDTH = 820;
    private static final int HEIGHT = 520;
    private static final int LEFT = 70;
    private static final int RIGHT = 200;
    private static final int TOP = 60;
    private static final int BOTTOM = 60;

    static String svg(List<PlanCommand.Point> points, double reference, String title) {
        double xMax = Math.ceil(points.stream().mapToDouble(PlanCommand.Point::bitsPerWeight).max().orElse(16));
        double yMin = Math.log10(reference * 0.95);
        double yMax = Math.log10(points.stream().mapToDouble(p -> Math.max(p.measured(), p.predicted()))
                .filter(Double::isFinite).max().orElse(reference * 10) * 1.1);
        Axes a = new Axes(xMax, yMin, Math.max(yMax, yMin + 0.1));
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "font-family=\"sans-serif\" font-size=\"12\">%n", WIDTH, HEIGHT));
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        s.append("<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Perplexity against size: "
                + "mixed-precision plans and uniform encodings</text>\n");
        s.append(String.format(Locale.ROOT, "<text x=\"10\" y=\"42\" fill=\"#555\">%s</text>%n", escape(title)));
        // Axes, with a tick per bit and per power of ten (and 2x, 5x).
        s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                + "stroke=\"#999\"/>%n", LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM));
        for (int b = 0; b <= xMax; b += xMax > 10 ? 2 : 1) {
            s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>%n",
                    a.x(b), HEIGHT - BOTTOM + 18, b));
        }
        for (int e = (int) Math.floor(yMin); e <= Math.ceil(a.yMax); e++) {
            for (int m : new int[] {1, 2, 5}) {
                double v = m * Math.pow(10, e);
                if (Math.log10(v) >= yMin && Math.log10(v) <= a.yMax) {
                    s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
                            + "stroke=\"#eee\"/>%n", LEFT, WIDTH - RIGHT, a.y(v), a.y(v)));
                    s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n",
                            LEFT - 6, a.y(v) + 4, v >= 10 ? String.format(Locale.ROOT, "%.0f", v)
                                    : String.format(Locale.ROOT, "%.1f", v)));
                }
            }
        }
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">bits per weight "
                + "(matrices, scales included)</text>%n", (LEFT + WIDTH - RIGHT) / 2, HEIGHT - 20));
        s.append(String.format(Locale.ROOT, "<text x=\"18\" y=\"%d\" transform=\"rotate(-90 18 %d)\" "
                + "text-anchor=\"middle\">perplexity (log)</text>%n", HEIGHT / 2, HEIGHT / 2));
        s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#2a2\" "
                + "stroke-dasharray=\"4 3\"/>%n", LEFT, WIDTH - RIGHT, a.y(reference), a.y(reference)));
        List<PlanCommand.Point> plans = points.stream().filter(p -> !p.uniform() && !p.chosen()).toList();
        s.append(polyline(plans, a, true, "#999"));
        s.append(polyline(plans, a, false, "#2f6db5"));
        for (PlanCommand.Point p : points) {
            String color = p.uniform() ? "#c33" : p.chosen() ? "#f90" : "#2f6db5";
            s.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"/>%n",
                    a.x(p.bitsPerWeight()), a.y(p.measured()), p.chosen() ? 6 : 4, color));
            if (p.uniform()) {
                s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#c33\">%s</text>%n",
                        a.x(p.bitsPerWeight()) + 7, a.y(p.measured()) - 6, escape(p.label().replace("uniform ", ""))));
            }
        }
        int lx = WIDTH - RIGHT + 15;
        String[][] legend = {{"#2f6db5", "plans, measured"}, {"#999", "plans, predicted"},
            {"#c33", "uniform, measured"}, {"#f90", "chosen plan"}, {"#2a2", "unquantized"}};
        for (int i = 0; i < legend.length; i++) {
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                    + "<text x=\"%d\" y=\"%d\">%s</text>%n", lx, TOP + i * 20, legend[i][0], lx + 18, TOP + i * 20 + 11,
                    legend[i][1]));
        }
        s.append("</svg>\n");
        return s.toString();
    }

    private static String polyline(List<PlanCommand.Point> points, Axes a, boolean predicted, String color) {
        StringBuilder path = new StringBuilder();
        for (PlanCommand.Point p : points) {
            double v = predicted ? p.predicted() : p.measured();
            if (Double.isFinite(v)) {
                path.append(String.format(Locale.ROOT, "%.1f,%.1f ", a.x(p.bitsPerWeight()), a.y(v)));
            }
        }
        return String.format(Locale.ROOT, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"/>%n",
                path.toString().trim(), color, predicted ? "1.5\" stroke-dasharray=\"5 3" : "2");
    }

    private record Axes(double xMax, double yMin, double yMax) {
        double x(double bits) {
            return LEFT + bits / xMax * (WIDTH - LEFT - RIGHT);
        }

        double y(double ppl) {
            double l = Math.log10(Math.max(ppl, 1e-9));
            l = Math.max(yMin, Math.min(yMax, l));
            return HEIGHT - BOTTOM - (l - yMin) / (yMax - yMin) * (HEIGHT - TOP - BOTTOM);
        }
    }

    private static String escape(String text) {
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
