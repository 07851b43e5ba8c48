package io.bitplane.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code plan}, {@code convert --recipe} and {@code convert --calibrate} with the exact spellings of the issue, on
 * stories260K with small paragraph ranges (the full protocol runs are in the README, not in CI).
 */
class PlanCommandTest {
    @TempDir
    Path dir;

    private static String text() {
        return SharedData.file("data/tinystories_validation_head.txt").toString();
    }

    @Test
    void planWritesARecipeWithinTheBudgetThatConvertFollows() throws Exception {
        Path recipe = dir.resolve("plan.json");
        CliRunner.Result r = CliRunner.run("plan", "--model", SharedData.stories260K().toString(), "--calibrate",
                text(), "--evaluate", text(), "--calibrate-paragraphs", "1000:1040", "--sensitivity-paragraphs", "4",
                "--evaluate-paragraphs", "0:20", "--frontier-points", "3", "--encodings", "ternary,int4,int8",
                "--budget", "5.0", "--output", recipe.toString(), "--json");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("chosen encodings:") && r.out().contains("uniform int4@32"), r.out());
        assertTrue(Files.readString(dir.resolve("plan.svg")).startsWith("<svg"));
        JsonNode frontier = MetadataJson.mapper().readTree(dir.resolve("plan.frontier.json").toFile());
        assertEquals(36, frontier.path("sensitivity_kl").size());
        JsonNode plan = MetadataJson.mapper().readTree(recipe.toFile());
        assertEquals(36, plan.path("overrides").size());
        assertTrue(plan.path("plan").path("bits_per_weight").asDouble() <= 5.0);

        Path out = dir.resolve("planned.bpm");
        r = CliRunner.run("convert", "--model", SharedData.stories260K().toString(), "--output", out.toString(),
                "--recipe", recipe.toString(), "--calibrate", text(), "--calibrate-paragraphs", "1000:1040",
                "--distill-steps", "0");
        assertEquals(0, r.exit(), r.err());
        JsonNode report = MetadataJson.mapper().readTree(CliRunner.run("inspect", "--model", out.toString(),
                "--json").out());
        long bits = 0;
        long weights = 0;
        for (JsonNode t : report.path("tensors")) {
            if (t.path("shape").size() == 2) {
                String expected = null;
                for (JsonNode o : plan.path("overrides")) {
                    if (o.path("pattern").asText().equals(t.path("name").asText())) {
                        expected = o.path("spec").asText();
                    }
                }
                assertTrue(expected != null && expected.startsWith(t.path("encoding").asText().toLowerCase()),
                        t + " vs " + expected);
                bits += 8 * t.path("bytes").asLong();
                weights += t.path("shape").get(0).asLong() * t.path("shape").get(1).asLong();
            }
        }
        assertTrue((double) bits / weights <= 5.0 + 0.05, "bits per weight " + (double) bits / weights);
    }

    @Test
    void badPlanAndRecipeInputsAreNamed() throws Exception {
        CliRunner.Result r = CliRunner.run("plan", "--model", SharedData.stories260K().toString(), "--calibrate",
                text(), "--evaluate", text(), "--budget", "0.5", "--calibrate-paragraphs", "1000:1010", "--sensitivity-paragraphs", "2",
                "--evaluate-paragraphs", "0:5", "--frontier-points", "2", "--encodings", "int4",
                "--output", dir.resolve("p.json").toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("below the smallest plan"), r.err());

        r = CliRunner.run("plan", "--calibrate", text(), "--evaluate", text(), "--calibrate-paragraphs", "5000:6000", "--budget", "3",
                "--output", dir.resolve("p.json").toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("--calibrate-paragraphs 5000:6000"), r.err());

        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"default\": \"auto\", \"overrides\": [{\"pattern\": \"x\", \"spec\": \"int3\"}]}");
        r = CliRunner.run("convert", "--model", SharedData.stories260K().toString(), "--output",
                dir.resolve("x.bpm").toString(), "--recipe", bad.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("bad.json") && r.err().contains("overrides[0]") && r.err().contains("int3"),
                r.err());
        Files.writeString(bad, "[1, 2");
        r = CliRunner.run("convert", "--model", SharedData.stories260K().toString(), "--output",
                dir.resolve("x.bpm").toString(), "--recipe", bad.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("bad.json") && r.err().contains("not a JSON recipe"), r.err());
        assertTrue(Files.notExists(dir.resolve("x.bpm")));
    }

    @Test
    void convertWithCalibrationRecordsGptqAndDistillationPerTensor() throws Exception {
        Path out = dir.resolve("int4.bpm");
        CliRunner.Result r = CliRunner.run("convert", "--model", SharedData.stories260K().toString(), "--output",
                out.toString(), "--weights", "int4", "--calibrate", text(), "--calibrate-paragraphs", "1000:1030",
                "--distill-steps", "4");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("calibrated 36 matrices with GPTQ on 30 paragraphs"), r.err());
        assertTrue(r.err().contains("distilled 36 matrices: KL "), r.err());
        assertEquals("gptq+distilled+clip_search", quantizer(out, "blk.0.attn_q.weight"));

        r = CliRunner.run("convert", "--model", SharedData.stories260K().toString(), "--output",
                out.toString(), "--weights", "int4", "--calibrate", text(), "--calibrate-paragraphs", "1000:1030",
                "--distill-steps", "0");
        assertEquals(0, r.exit(), r.err());
        assertFalse(r.err().contains("distilled"), r.err());
        assertEquals("gptq+clip_search", quantizer(out, "blk.0.attn_q.weight"));

        for (String[] bad : new String[][] {{"--calibrate-paragraphs", "1000:1030"}, {"--distill-steps", "5"},
                {"--distill-rate", "0.1"}}) {
            r = CliRunner.run("convert", "--model", SharedData.stories260K().toString(), "--output",
                    out.toString(), "--weights", "int4", bad[0], bad[1]);
            assertEquals(1, r.exit());
            assertTrue(r.err().contains("need --calibrate TEXT"), r.err());
        }
        r = CliRunner.run("convert", "--model", SharedData.stories260K().toString(), "--output",
                out.toString(), "--weights", "int4", "--calibrate", text(), "--distill-steps", "-1");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("steps >= 0"), r.err());
    }

    private static String quantizer(Path model, String tensor) throws Exception {
        try (io.bitplane.format.BpmFile f = io.bitplane.format.BpmFile.open(model)) {
            return f.metadata().quantization().path("tensors").path(tensor).path("quantizer").asText();
        }
    }
}
