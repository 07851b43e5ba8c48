package io.bitplane.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** convert, inspect and verify as a user runs them: exit codes, tables, one-line errors. */
class FormatCommandsTest {
    @TempDir
    Path dir;

    private Path convert(String... extra) {
        Path out = dir.resolve("m.bpm");
        String[] args = new String[4 + extra.length];
        args[0] = "convert";
        args[1] = "--model=" + SharedData.stories260K();
        args[2] = "--output=" + out;
        args[3] = "--tokenizer=" + SharedData.tok512();
        System.arraycopy(extra, 0, args, 4, extra.length);
        CliRunner.Result r = CliRunner.run(args);
        assertEquals(0, r.exit(), r.err());
        return out;
    }

    /** stories260K rows are only 64 wide, so a per-row f16 scale adds 0.25 bit (about 0.004 at K = 4096). */
    @ParameterizedTest
    @CsvSource({"binary, 1.0, 1.35", "ternary, 2.0, 2.35", "int4, 4.5, 5.1", "int8, 8.5, 8.6", "f16, 16, 16",
            "f32, 32, 32"})
    void inspectShowsBitsPerWeightAndSizesThatMatchTheFile(String enc, double low, double high) throws Exception {
        Path out = convert("--weights", enc);
        CliRunner.Result r = CliRunner.run("inspect", "--model", out.toString(), "--json");
        assertEquals(0, r.exit(), r.err());
        JsonNode report = MetadataJson.mapper().readTree(r.out());
        double bpw = report.path("totals").path("matrix_bits_per_weight").asDouble();
        assertTrue(bpw >= low && bpw <= high, enc + ": " + bpw);
        long tensorBytes = report.path("totals").path("tensor_bytes").asLong();
        long fileBytes = Files.size(out);
        // The file is the tensors plus header (metadata holds the 512-token vocabulary) and alignment padding.
        assertTrue(fileBytes >= tensorBytes && fileBytes < tensorBytes + 40_000 + 64 * 47, fileBytes + " vs "
                + tensorBytes);
        CliRunner.Result table = CliRunner.run("inspect", "--model", out.toString());
        assertTrue(table.out().contains("blk.4.ffn_down.weight"), table.out());
        assertTrue(table.out().contains("total: 47 tensors"), table.out());
        assertTrue(table.out().contains("tokenizer: llama, 512 tokens, BOS 1, EOS 2\n"), table.out());
        assertEquals(512, report.path("tokenizer").path("tokens").asInt());
        // How each tensor was made, from the conversion's record: per tensor in JSON, counted in the table.
        int counted = 0;
        String quantizers = table.out().lines().filter(l -> l.startsWith("quantizers: ")).findFirst().orElseThrow();
        for (String part : quantizers.substring("quantizers: ".length()).split("; ")) {
            counted += Integer.parseInt(part.substring(part.lastIndexOf(" x") + 2));
        }
        assertEquals(47, counted, quantizers);
        for (JsonNode t : report.path("tensors")) {
            String want = t.path("shape").size() == 1 || enc.startsWith("f32") ? "lossless" : null;
            assertTrue(want == null ? !t.path("quantizer").asText().isEmpty()
                    : want.equals(t.path("quantizer").asText()), t.toString());
        }
        assertEquals(0, CliRunner.run("verify", "--model", out.toString()).exit());
    }

    @Test
    void w4a8IsInt4WeightsWithInt8ActivationHints() throws Exception {
        Path out = convert("--weights", "int4", "--activations", "int8", "--keep", "token_embd.weight=int8");
        JsonNode report = MetadataJson.mapper().readTree(CliRunner.run("inspect", "--model", out.toString(),
                "--json").out());
        for (JsonNode t : report.path("tensors")) {
            String name = t.path("name").asText();
            boolean matrix = t.path("shape").size() == 2;
            assertEquals(matrix ? "INT8" : "F32", t.path("activations").asText(), name);
            if (name.equals("token_embd.weight")) {
                assertEquals("INT8", t.path("encoding").asText());
            } else if (matrix) {
                assertEquals("INT4", t.path("encoding").asText());
            }
        }
    }

    @Test
    void damagedFilesFailVerifyWithOneLineNamingTheProblem() throws Exception {
        Path good = convert("--weights", "ternary");
        byte[] bytes = Files.readAllBytes(good);

        Path truncated = dir.resolve("truncated.bpm");
        Files.write(truncated, Arrays.copyOf(bytes, bytes.length - 10));
        CliRunner.Result r = CliRunner.run("verify", "--model", truncated.toString());
        assertEquals(1, r.exit());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("truncated"), r.err());

        Path flipped = dir.resolve("flipped.bpm");
        byte[] b = bytes.clone();
        b[b.length - 200] ^= 4;
        Files.write(flipped, b);
        r = CliRunner.run("verify", "--model", flipped.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("tensor output_norm.weight: checksum mismatch")
                || r.err().contains("tensor blk.4.ffn_down.weight: checksum mismatch"), r.err());

        Path header = dir.resolve("header.bpm");
        b = bytes.clone();
        b[100] ^= 1;
        Files.write(header, b);
        r = CliRunner.run("inspect", "--model", header.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("header checksum mismatch"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    @Test
    void badArgumentsAreNamed() {
        CliRunner.Result r = CliRunner.run("convert", "--model", dir.resolve("nope.bin").toString(), "--output",
                dir.resolve("x.bpm").toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("nope.bin") && r.err().contains("no such"), r.err());

        r = CliRunner.run("convert", "--model", SharedData.stories260K().toString(), "--output",
                dir.resolve("x.bpm").toString(), "--weights", "int3");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("unknown encoding 'int3'"), r.err());
        assertTrue(Files.notExists(dir.resolve("x.bpm")));

        r = CliRunner.run("convert", "--model", SharedData.stories260K().toString());
        assertEquals(2, r.exit(), "usage error");
        assertTrue(r.err().contains("--output"), r.err());
    }
}
