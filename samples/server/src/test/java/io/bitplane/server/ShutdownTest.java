package io.bitplane.server;

import io.bitplane.format.SharedData;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Shutdown ends running streams cleanly, and an API key guards /v1 but not /health. */
class ShutdownTest {
    static final HttpClient HTTP = HttpClient.newHttpClient();

    @Test
    void shutdownEndsRunningStreamsWithAFinishReasonAndDone() throws Exception {
        try (Model model = Model.open(SharedData.stories260K(),
                ModelOptions.defaults().withBackend("scalar").withThreads(1))) {
            DecodingServer server = DecodingServer.start(model, ServerConfig.defaults("m").withPort(0)
                    .withShutdownGrace(Duration.ZERO));
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/completions");
            var response = HTTP.send(HttpRequest.newBuilder(uri).POST(HttpRequest.BodyPublishers.ofString(
                    "{\"prompt\": \"\", \"max_tokens\": 500, \"stream\": true}")).build(),
                    HttpResponse.BodyHandlers.ofInputStream());
            BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
            assertTrue(reader.readLine().startsWith("data: {"));
            CompletableFuture<Void> closing = CompletableFuture.runAsync(server::close);
            List<String> lines = new ArrayList<>();
            for (String line; (line = reader.readLine()) != null; ) {
                if (!line.isEmpty()) {
                    lines.add(line);
                }
            }
            closing.get();
            assertEquals("data: [DONE]", lines.getLast());
            assertTrue(lines.get(lines.size() - 2).contains("\"finish_reason\":\"length\""), lines.get(lines.size() - 2));
            assertThrows(ConnectException.class, () -> HTTP.send(HttpRequest.newBuilder(uri)
                    .POST(HttpRequest.BodyPublishers.ofString("{}")).build(), HttpResponse.BodyHandlers.ofString()));
        }
    }

    @Test
    void shutdownAnswersEveryWholeRequestRunningOrQueued() throws Exception {
        try (Model model = Model.open(SharedData.stories260K(),
                ModelOptions.defaults().withBackend("scalar").withThreads(1))) {
            DecodingServer server = DecodingServer.start(model, ServerConfig.defaults("m").withPort(0)
                    .withLimits(1, 4, 64, 500, 4096).withShutdownGrace(Duration.ZERO));
            String base = "http://127.0.0.1:" + server.port();
            List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                answers.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"\", \"max_tokens\": 500}"))
                        .build(), HttpResponse.BodyHandlers.ofString()));
            }
            // Close while one decodes and one waits (if the first ends before, the second may run instead).
            while (!answers.getFirst().isDone() && !HTTP.send(HttpRequest.newBuilder(URI.create(base + "/metrics"))
                    .build(), HttpResponse.BodyHandlers.ofString()).body().contains("bitplane_queue_depth 1")) {
                Thread.sleep(1);
            }
            server.close();
            for (var answer : answers) {
                // Each is answered in full: the one decoding with what it has, one still queued with a 503.
                HttpResponse<String> response = answer.get();
                String body = response.body();
                assertTrue(response.statusCode() == 200 && body.contains("\"finish_reason\":\"length\"")
                        || response.statusCode() == 503 && body.contains("\"code\":\"shutting_down\""),
                        response.statusCode() + " " + body);
            }
        }
    }

    @Test
    void theApiKeyGuardsV1Only() throws Exception {
        try (Model model = Model.open(SharedData.stories260K())) {
            DecodingServer server = DecodingServer.start(model, ServerConfig.defaults("m").withPort(0)
                    .withApiKey("secret"));
            try {
                String base = "http://127.0.0.1:" + server.port();
                assertEquals(401, HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).build(),
                        HttpResponse.BodyHandlers.ofString()).statusCode());
                assertEquals(401, HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/models"))
                        .header("Authorization", "Bearer secreT").build(), HttpResponse.BodyHandlers.ofString())
                        .statusCode());
                assertEquals(200, HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/models"))
                        .header("Authorization", "Bearer secret").build(), HttpResponse.BodyHandlers.ofString())
                        .statusCode());
                assertEquals(200, HTTP.send(HttpRequest.newBuilder(URI.create(base + "/health")).build(),
                        HttpResponse.BodyHandlers.ofString()).statusCode());
            } finally {
                server.close();
            }
        }
    }
}
