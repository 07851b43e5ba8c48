package io.bitplane.cli;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import io.bitplane.format.SharedData;
import org.junit.jupiter.api.Test;

import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The command a user types: {@code ./bitplane serve} (the launcher script, JDK lookup, flags and all), driven by the
 * official OpenAI Java SDK. Runs after package (failsafe), since the launcher uses the packaged jar.
 */
class LauncherServeIT {

    @Test
    void theOpenAiSdkGetsTheGoldenTextFromBitplaneServe() throws Exception {
        Path root = Path.of(System.getProperty("bitplane.root", ".")).toAbsolutePath().normalize();
        Path launcher = root.resolve("bitplane");
        assertTrue(Files.isExecutable(launcher), launcher + " must be executable");
        String golden = Files.readString(SharedData.file("golden/stories260K-greedy.txt")).stripTrailing();
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Path log = Files.createTempFile("bitplane-serve-", ".log");
        Process serve = new ProcessBuilder(launcher.toString(), "serve", "--model", SharedData.stories260K().toString(),
                "--port", String.valueOf(port), "--model-id", "stories260K")
                .directory(root.toFile()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            awaitHealth(port, serve, log);
            assertTrue(Files.readString(log).contains("bitplane: warmed up in"), "the server warms up first");
            OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + port + "/v1")
                    .apiKey("unused").maxRetries(0).build();
            try {
                Completion c = client.completions().create(CompletionCreateParams.builder().model("stories260K")
                        .prompt("").maxTokens(256).temperature(0.0).build());
                assertEquals(golden, c.choices().get(0).text());
            } finally {
                client.close();
            }
        } finally {
            serve.destroy(); // SIGTERM: the server's shutdown hook closes it gracefully
            if (!serve.waitFor(30, TimeUnit.SECONDS)) {
                serve.destroyForcibly();
                throw new AssertionError("./bitplane serve did not stop within 30 s of SIGTERM: "
                        + Files.readString(log));
            }
        }
        String out = Files.readString(log);
        assertTrue(out.contains("serving stories260K at http://127.0.0.1:" + port), out);
        Files.deleteIfExists(log);
    }

    private static void awaitHealth(int port, Process serve, Path log) throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        HttpRequest health = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/health"))
                .timeout(Duration.ofSeconds(2)).build();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (System.nanoTime() < deadline) {
            if (!serve.isAlive()) {
                throw new AssertionError("./bitplane serve exited with " + serve.exitValue() + ": "
                        + Files.readString(log));
            }
            try {
                if (http.send(health, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
                    return;
                }
            } catch (java.io.IOException notYet) {
                // not listening yet
            }
            Thread.sleep(200);
        }
        throw new AssertionError("./bitplane serve did not become healthy in 120 s: " + Files.readString(log));
    }
}
