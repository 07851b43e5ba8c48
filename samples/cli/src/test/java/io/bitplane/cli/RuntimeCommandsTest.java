package io.bitplane.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** generate, perplexity and demo as a user runs them. */
class RuntimeCommandsTest {

    @ParameterizedTest
    @ValueSource(strings = {"auto", "java", "native", "opencl", "scalar"})
    void greedyGeneratePrintsTheGoldenTextAndStatsOnStderr(String backend) throws Exception {
        if (backend.equals("native") || backend.equals("opencl")) {
            BackendHere.assume(backend);
        }
        CliRunner.Result r = CliRunner.run("generate", "--model", SharedData.stories260K().toString(),
                "--temperature", "0", "--steps", "256", "--backend", backend);
        assertEquals(0, r.exit(), r.err());
        assertEquals(Files.readString(SharedData.file("golden/stories260K-greedy.txt")), r.out());
        assertTrue(r.err().contains("256 generated") && r.err().contains("tokens/s")
                && r.err().contains("time to first token") && r.err().contains("memory: resident"), r.err());
        if (!backend.equals("auto")) {
            assertTrue(r.err().contains("backend " + backend), r.err());
        }
    }

    /**
     * With INT8 activations every matrix product is exact, so the native, OpenCL and Java backends pick the same
     * tokens on converted models. With float activations the sums run in different orders; the tokens still
     * agree on these conversions (issue 6 asks it of OpenCL's INT8 and INT4).
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"int8, planes, native, int8", "int4, planes, native, int8",
        "ternary, planes, native, int8", "int4, packed, native, int8", "ternary, packed, native, int8",
        "int8, planes, opencl, int8", "int4, planes, opencl, int8", "ternary, planes, opencl, int8",
        "int4, packed, opencl, int8", "ternary, packed, opencl, int8", "int8, planes, opencl, f32",
        "int4, planes, opencl, f32"})
    void convertedModelsGiveTheSameTokensOnEveryBackend(String weights, String layout, String backend,
            String activations, @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        BackendHere.assume(backend);
        String model = dir.resolve(weights + ".bpm").toString();
        CliRunner.Result c = CliRunner.run("convert", "--model", SharedData.stories260K().toString(), "--output",
                model, "--weights", weights, "--activations", activations, "--layout", layout);
        assertEquals(0, c.exit(), c.err());
        String[] args = {"generate", "--model", model, "--temperature", "0", "--steps", "100", "--backend", ""};
        args[args.length - 1] = "java";
        CliRunner.Result java = CliRunner.run(args);
        args[args.length - 1] = backend;
        CliRunner.Result other = CliRunner.run(args);
        assertEquals(0, java.exit(), java.err());
        assertEquals(0, other.exit(), other.err());
        assertTrue(java.out().length() > 100, java.out());
        assertEquals(java.out(), other.out());
    }

    @Test
    void theSameSeedGivesTheSameStory() {
        String[] args = {"generate", "--model", SharedData.stories260K().toString(), "--prompt", "Once upon a time",
                "--steps", "50", "--temperature", "0.9", "--seed", "5"};
        assertEquals(CliRunner.run(args).out(), CliRunner.run(args).out());
    }

    /** --grammar and --grammar-file hold the story to a GBNF grammar, as llama-cli's do; a bad one is named. */
    @Test
    void aGrammarHoldsTheText(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        String grammar = "root ::= \"Lily \" (\"ran\" | \"sat\") \" \" [a-z]+ \".\"";
        CliRunner.Result r = CliRunner.run("generate", "--model", SharedData.stories260K().toString(), "--steps",
                "30", "--temperature", "0.8", "--seed", "3", "--grammar", grammar);
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().strip().matches("Lily (ran|sat) [a-z]+\\."), r.out());
        java.nio.file.Path file = dir.resolve("story.gbnf");
        java.nio.file.Files.writeString(file, grammar);
        assertEquals(r.out(), CliRunner.run("generate", "--model", SharedData.stories260K().toString(), "--steps",
                "30", "--temperature", "0.8", "--seed", "3", "--grammar-file", file.toString()).out());
        java.nio.file.Files.writeString(file, "root ::= [a-z");
        CliRunner.Result bad = CliRunner.run("generate", "--model", SharedData.stories260K().toString(),
                "--grammar-file", file.toString());
        assertEquals(1, bad.exit());
        assertTrue(bad.err().contains("story.gbnf") && bad.err().contains("line 1"), bad.err());
    }

    /** Embeddings read the final states back from every backend (OpenCL's from the device) alike. */
    @ParameterizedTest
    @ValueSource(strings = {"java", "native", "opencl"})
    void embeddingsAgreeOnEveryBackend(String backend) throws Exception {
        if (!backend.equals("java")) {
            BackendHere.assume(backend);
        }
        int[] tokens;
        float[][] want = new float[2][];
        try (io.bitplane.runtime.Model m = io.bitplane.runtime.Model.open(SharedData.stories260K(),
                io.bitplane.runtime.ModelOptions.defaults().withBackend("scalar"));
             io.bitplane.runtime.Session s = m.newSession()) {
            tokens = m.tokenizer().encode("Lily and Ben went to the park. They played with a ball.", true, false);
            want[0] = s.embed(tokens, io.bitplane.runtime.Pooling.MEAN);
            want[1] = s.embed(tokens, io.bitplane.runtime.Pooling.LAST);
        }
        try (io.bitplane.runtime.Model m = io.bitplane.runtime.Model.open(SharedData.stories260K(),
                io.bitplane.runtime.ModelOptions.defaults().withBackend(backend));
             io.bitplane.runtime.Session s = m.newSession()) {
            float[][] got = {s.embed(tokens, io.bitplane.runtime.Pooling.MEAN),
                s.embed(tokens, io.bitplane.runtime.Pooling.LAST)};
            for (int p = 0; p < 2; p++) {
                for (int i = 0; i < want[p].length; i++) {
                    assertEquals(want[p][i], got[p][i], 1e-4, backend + " pooling " + p + " element " + i);
                }
            }
        }
    }

    /** bitplane embed prints one JSON array a text: the runtime's embedding, float for float. */
    @Test
    void embedPrintsEachTextsEmbedding() throws Exception {
        CliRunner.Result r = CliRunner.run("embed", "--model", SharedData.stories260K().toString(), "--text",
                "Once upon a time", "--text", "The dog ran.", "--pooling", "last");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(2, lines.length, r.out());
        try (io.bitplane.runtime.Model m = io.bitplane.runtime.Model.open(SharedData.stories260K());
             io.bitplane.runtime.Session s = m.newSession()) {
            float[] want = s.embed(m.tokenizer().encode("The dog ran.", true, false), io.bitplane.runtime.Pooling.LAST);
            JsonNode got = MetadataJson.mapper().readTree(lines[1]);
            assertEquals(want.length, got.size());
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i], got.get(i).floatValue(), 0f);
            }
        }
        CliRunner.Result bad = CliRunner.run("embed", "--model", SharedData.stories260K().toString(), "--text", "x",
                "--pooling", "cls");
        assertEquals(1, bad.exit());
        assertTrue(bad.err().contains("pooling 'cls'"), bad.err());
    }

    @Test
    void perplexityAsJson() throws Exception {
        CliRunner.Result r = CliRunner.run("perplexity", "--model", SharedData.stories260K().toString(), "--text",
                SharedData.file("data/tinystories_validation_head.txt").toString(), "--paragraphs", "0:20",
                "--json");
        assertEquals(0, r.exit(), r.err());
        JsonNode o = MetadataJson.mapper().readTree(r.out());
        assertEquals("0:20", o.path("paragraphs").asText());
        double ppl = o.path("perplexity").asDouble();
        assertTrue(ppl > 2 && ppl < 8, "" + ppl);
        assertTrue(o.path("scored_tokens").asInt() > 1000);
    }

    @Test
    void badOptionsAreNamed() throws Exception {
        String text = SharedData.file("data/tinystories_validation_head.txt").toString();
        CliRunner.Result r = CliRunner.run("perplexity", "--model", SharedData.stories260K().toString(), "--text",
                text, "--paragraphs", "5:2");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("--paragraphs 5:2"), r.err());
        r = CliRunner.run("perplexity", "--model", SharedData.stories260K().toString(), "--text", text,
                "--paragraphs", "x");
        assertTrue(r.err().contains("must be A:B"), r.err());
        r = CliRunner.run("generate", "--model", SharedData.stories260K().toString(), "--temperature", "-1");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("temperature must be >= 0"), r.err());
        r = CliRunner.run("generate", "--model", SharedData.stories260K().toString(), "--backend", "cuda");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("backend 'cuda' is not available"), r.err());
        r = CliRunner.run("generate", "--model", "/nonexistent/model.bin");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("/nonexistent/model.bin"), r.err());
    }

    @Test
    void aSyntheticModelCanBeWrittenAndRun(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        String out = dir.resolve("synth.bpm").toString();
        CliRunner.Result r = CliRunner.run("synth", "--output", out, "--dim", "64", "--hidden", "128", "--layers",
                "2", "--heads", "4", "--kv-heads", "2", "--vocab", "300", "--context", "64", "--weights", "int4",
                "--activations", "int8");
        assertEquals(0, r.exit(), r.err());
        r = CliRunner.run("generate", "--model", out, "--prompt", "abc", "--steps", "10", "--temperature", "0");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("prompt tokens"), r.err());
        assertEquals(0, CliRunner.run("verify", "--model", out).exit());
    }

    @Test
    void devicesListsTheOpenClDevicesAndABadDeviceNumberIsAUsageError() {
        BackendHere.assume("opencl");
        CliRunner.Result r = CliRunner.run("devices");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith("opencl:\n  0: ") && r.out().contains("MiB")
                && r.out().contains("compute units"), r.out());
        CliRunner.Result bad = CliRunner.run("generate", "--model", SharedData.stories260K().toString(), "--steps",
                "5", "--backend", "opencl", "--device", "99");
        System.clearProperty("bitplane.opencl.device");
        assertEquals(1, bad.exit(), bad.err());
        assertTrue(bad.err().contains("no OpenCL device 99") && bad.err().contains("bitplane devices"), bad.err());
    }

    /** A list of backends is a preference: where OpenCL cannot start, the next one runs and one line says why. */
    @Test
    void aListOfBackendsFallsBackInOrder() throws Exception {
        CliRunner.Result r = CliRunner.run("generate", "--model", SharedData.stories260K().toString(), "--temperature",
                "0", "--steps", "256", "--backend", "opencl,java", "--device", "99");
        System.clearProperty("bitplane.opencl.device");
        assertEquals(0, r.exit(), r.err());
        assertEquals(Files.readString(SharedData.file("golden/stories260K-greedy.txt")), r.out());
        assertTrue(r.err().contains("bitplane: not using the opencl backend: ") && r.err().contains("trying java")
                && r.err().contains("backend java"), r.err());
    }

    @Test
    void benchWritesJsonAndAChart(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        String out = dir.resolve("b").toString();
        CliRunner.Result r = CliRunner.run("bench", "--shape", "64x256", "--encodings", "f32,ternary", "--activations",
                "f32,int8", "--seconds", "0.05", "--output", out);
        assertEquals(0, r.exit(), r.err());
        JsonNode json = MetadataJson.mapper().readTree(Files.readString(java.nio.file.Path.of(out + ".json")));
        int backends = 1 + (BackendHere.starts("native") ? 1 : 0) + (BackendHere.starts("opencl") ? 1 : 0);
        assertEquals(5 * backends, json.path("kernels").size(),
                "f32 x f32, ternary x f32 and x int8 in both layouts, per backend");
        assertEquals(backends, json.path("backends").size(), json.toString());
        for (JsonNode k : json.path("kernels")) {
            assertTrue(k.path("weights_per_second").asDouble() > 0 && k.path("roofline_weights_per_second")
                    .asDouble() > 0, k.toString());
        }
        String svg = Files.readString(java.nio.file.Path.of(out + ".svg"));
        assertTrue(svg.contains("java: ternary x int8") && svg.contains("java: ternary packed x int8")
                && (!BackendHere.starts("native") || svg.contains("native: ternary packed x int8"))
                && (!BackendHere.starts("opencl") || svg.contains("opencl: ternary packed x int8")), svg);
    }

    /** --layout picks the layouts of INT4 and ternary; encodings with one layout are measured in it all the same. */
    @Test
    void benchMeasuresEncodingsWithOneLayoutWhateverLayoutIsAsked(@org.junit.jupiter.api.io.TempDir
                                                                  java.nio.file.Path dir) throws Exception {
        String out = dir.resolve("b").toString();
        CliRunner.Result r = CliRunner.run("bench", "--backend", "java", "--shape", "64x256", "--encodings",
                "int8,binary,ternary", "--activations", "int8", "--layout", "packed", "--seconds", "0.05", "--output",
                out);
        assertEquals(0, r.exit(), r.err());
        JsonNode json = MetadataJson.mapper().readTree(Files.readString(java.nio.file.Path.of(out + ".json")));
        java.util.List<String> kernels = new java.util.ArrayList<>();
        json.path("kernels").forEach(k -> kernels.add(k.path("kernel").asText()));
        assertEquals(java.util.List.of("int8 x int8", "binary x int8", "ternary packed x int8"), kernels);
    }

    /** End to end: tokens/s against the roofline of the bytes a token reads, and where a token's time goes. */
    @Test
    void benchDecodesAModelAndProfilesItsOps(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        String out = dir.resolve("b").toString();
        CliRunner.Result r = CliRunner.run("bench", "--model", SharedData.stories260K().toString(), "--backend",
                "java,scalar", "--threads", "1", "--seconds", "0.2", "--window", "40", "--profile", "--output", out);
        assertEquals(0, r.exit(), r.err());
        JsonNode json = MetadataJson.mapper().readTree(Files.readString(java.nio.file.Path.of(out + ".json")));
        assertEquals(0, json.path("kernels").size(), "no kernels unless --encodings is given");
        assertEquals(2, json.path("decode").size(), json.toString());
        // stories260K in f32: per layer q, k, v, o (dim x dim, dim x kv, dim x kv, dim x dim) and gate, up, down
        // (hidden x dim), then the output projection (tied to the embedding table); dim 64, kv 32, hidden 172.
        long expected = 4L * (5 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 172) + 512 * 64);
        for (JsonNode d : json.path("decode")) {
            assertEquals(expected, d.path("weight_bytes_per_token").asLong(), d.toString());
            assertTrue(d.path("tokens_per_second").asDouble() > 0 && d.path("roofline_tokens_per_second").asDouble()
                    > 0 && d.path("read_bandwidth_bytes_per_second").asDouble() > 0
                    && d.path("prompt_tokens_per_second").asDouble() > 0, d.toString());
            java.util.Map<String, JsonNode> ops = new java.util.HashMap<>();
            d.path("ops_per_token").forEach(op -> ops.put(op.path("op").asText(), op));
            // gate and up, products of one input, are one job (Backend.matmuls) and one row; down is alone
            JsonNode gateUp = ops.get("matmul blk.N.{ffn_gate,ffn_up}.weight");
            assertEquals(5.0, gateUp.path("calls").asDouble(), 1e-9, ops.toString());
            assertEquals(2 * 4.0 * 172 * 64 * 5, gateUp.path("weight_bytes").asDouble(), 1e-6);
            assertEquals(5.0, ops.get("matmul blk.N.ffn_down.weight").path("calls").asDouble(), 1e-9);
            assertEquals(5.0, ops.get("attention").path("calls").asDouble(), 1e-9);
            assertEquals(1.0, ops.get("matmul token_embd.weight").path("calls").asDouble(), 1e-9);
        }
        assertTrue(r.err().contains("matmul blk.N.{attn_q,attn_k,attn_v}.weight") && r.err().contains("all ops"),
                r.err());
        String svg = Files.readString(java.nio.file.Path.of(out + ".svg"));
        assertTrue(svg.contains("java: decode stories260K.bin") && svg.contains("scalar: decode stories260K.bin")
                && !svg.contains("Matrix-vector"), svg);
    }

    @Test
    void benchNamesAModelItCannotRead() {
        CliRunner.Result r = CliRunner.run("bench", "--model", "no/such/model.bpm", "--backend", "java");
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--model no/such/model.bpm"), r.err());
    }

    @Test
    void demoPrintsATableForEveryEncoding() {
        CliRunner.Result r = CliRunner.run("demo", "--model", SharedData.stories260K().toString(), "--steps", "12",
                "--paragraphs", "3");
        assertEquals(0, r.exit(), r.err());
        for (String enc : new String[] {"f32", "int8", "int4", "w4a8", "ternary", "binary"}) {
            assertTrue(r.out().contains("| " + enc + " "), enc + " row missing:\n" + r.out());
        }
    }
}
