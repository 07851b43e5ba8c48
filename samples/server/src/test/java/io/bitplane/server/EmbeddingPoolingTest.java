package io.bitplane.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.SharedData;
import io.bitplane.format.importer.GgufWriter;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Pooling;
import io.bitplane.runtime.Session;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * /v1/embeddings pools as the model file says (a GGUF's pooling_type: Qwen3-Embedding's is the last token) unless
 * the server is told otherwise, and names a pooling it does not support.
 */
class EmbeddingPoolingTest {
    static final ModelConfig CONFIG = new ModelConfig(64, 96, 2, 4, 2, 512, 64, 10000f, 1e-5f, true);
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    Path model(Integer poolingType) throws Exception {
        GgufWriter w = GgufWriter.llama(CONFIG, 3);
        if (poolingType != null) {
            w.put("llama.pooling_type", poolingType);
        }
        Path p = dir.resolve("pooling-" + poolingType + ".gguf");
        w.write(p);
        return p;
    }

    static HttpResponse<String> embed(DecodingServer server, String text) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port()
                        + "/v1/embeddings")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"input\": " + JSON.writeValueAsString(text) + "}"))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    static float[] served(Model m, ServerConfig config, String text) throws Exception {
        try (DecodingServer server = DecodingServer.start(m, config)) {
            HttpResponse<String> r = embed(server, text);
            assertEquals(200, r.statusCode(), r.body());
            JsonNode values = JSON.readTree(r.body()).path("data").get(0).path("embedding");
            float[] out = new float[values.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = (float) values.get(i).asDouble();
            }
            return out;
        }
    }

    static float[] runtime(Model m, String text, Pooling pooling) {
        try (Session s = m.newSession()) {
            return s.embed(m.tokenizer().encode(text, true, false), pooling);
        }
    }

    @Test
    void theModelsPoolingIsTheDefaultAndTheServerMayOverrideIt() throws Exception {
        String text = "Once upon a time there was a cat.";
        ModelOptions options = ModelOptions.defaults().withTokenizer(SharedData.file("models/tok512.bin"));
        ServerConfig config = ServerConfig.defaults("m").withPort(0).withLimits(1, 4, 256, 16, 1 << 16);
        try (Model last = Model.open(model(3), options)) {
            float[] lastWant = runtime(last, text, Pooling.LAST);
            float[] meanWant = runtime(last, text, Pooling.MEAN);
            assertTrue(Math.abs(lastWant[0] - meanWant[0]) > 1e-4, "the poolings differ on this model");
            assertClose(lastWant, served(last, config, text));
            assertClose(meanWant, served(last, config.withPooling(Pooling.MEAN), text));
        }
        try (Model plain = Model.open(model(null), options)) {
            assertClose(runtime(plain, text, Pooling.MEAN), served(plain, config, text));
        }
        try (Model rank = Model.open(model(4), options);
             DecodingServer server = DecodingServer.start(rank, config)) {
            HttpResponse<String> r = embed(server, text);
            assertEquals(400, r.statusCode(), r.body());
            assertTrue(r.body().contains("rank") && r.body().contains("--pooling"), r.body());
        }
    }

    static void assertClose(float[] want, float[] got) {
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], 1e-6f, "element " + i);
        }
    }
}
