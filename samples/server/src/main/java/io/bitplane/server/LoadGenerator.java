package io.bitplane.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A bounded load test for an OpenAI-compatible server: {@code clients} concurrent streaming clients share a fixed
 * number of completion requests and stop when they are done (or, in soak mode, at a deadline). Measures aggregate
 * generated tokens per second, time to first token and the latency between tokens (p50, p99), and counts responses
 * by status. Soak mode adds abuse: clients that leave mid-stream, garbage bodies, and bursts past the queue.
 */
public final class LoadGenerator {
    private final URI base;
    private final String apiKey;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final ObjectMapper json = new ObjectMapper();

    public LoadGenerator(URI base, String apiKey) {
        this.base = base;
        this.apiKey = apiKey;
    }

    /** What one load level produced. */
    public record Result(int clients, int requests, Map<Integer, Integer> statuses, int ioErrors,
                         int garbageRefused, long tokens,
                         double seconds, double tokensPerSecond, double ttftP50Ms, double ttftP99Ms,
                         double tokenP50Ms, double tokenP99Ms) {
        /** Responses that are neither 200 nor 429, and transport failures: must be zero below the limits. */
        public int errors() {
            int e = ioErrors;
            for (Map.Entry<Integer, Integer> s : statuses.entrySet()) {
                if (s.getKey() != 200 && s.getKey() != 429) {
                    e += s.getValue();
                }
            }
            return e;
        }

        public String line() {
            return String.format(Locale.ROOT, "%7d %8d %6d %6d %6d %9d %8.1f %10.1f %9.1f %9.1f %9.1f %9.1f",
                    clients, requests, statuses.getOrDefault(200, 0), statuses.getOrDefault(429, 0), errors(),
                    tokens, seconds, tokensPerSecond, ttftP50Ms, ttftP99Ms, tokenP50Ms, tokenP99Ms);
        }

        public static String header() {
            return "clients requests     ok    429 errors    tokens wall(s)  tokens/s ttft50ms ttft99ms  tok50ms"
                    + "  tok99ms";
        }
    }

    /** Per-thread measurements, merged at the end. */
    private static final class Tally {
        final List<Double> ttft = new ArrayList<>();
        final List<Double> gaps = new ArrayList<>();
        final Map<Integer, Integer> statuses = new TreeMap<>();
        int ioErrors;
        int garbageRefused;
        long tokens;
    }

    /**
     * Runs {@code requests} streaming completions over {@code clients} clients (or, with a positive
     * {@code soakSeconds}, as many as fit the time, with {@code abuse} on).
     */
    public Result run(int clients, int requests, int maxTokens, String prompt, double soakSeconds, boolean abuse)
            throws InterruptedException {
        AtomicInteger remaining = new AtomicInteger(soakSeconds > 0 ? Integer.MAX_VALUE : requests);
        AtomicInteger sent = new AtomicInteger();
        long start = System.nanoTime();
        long deadline = soakSeconds > 0 ? start + (long) (soakSeconds * 1e9) : Long.MAX_VALUE;
        List<Tally> tallies = Collections.synchronizedList(new ArrayList<>());
        try (ExecutorService pool = Executors.newFixedThreadPool(clients)) {
            for (int c = 0; c < clients; c++) {
                pool.submit(() -> {
                    Tally t = new Tally();
                    tallies.add(t);
                    while (remaining.getAndDecrement() > 0 && System.nanoTime() < deadline) {
                        sent.incrementAndGet();
                        int kind = abuse ? ThreadLocalRandom.current().nextInt(10) : 9;
                        if (kind == 0) {
                            garbage(t);
                        } else {
                            stream(t, prompt, maxTokens, kind == 1);
                        }
                    }
                    return null;
                });
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Tally all = new Tally();
        for (Tally t : tallies) {
            all.ttft.addAll(t.ttft);
            all.gaps.addAll(t.gaps);
            t.statuses.forEach((k, v) -> all.statuses.merge(k, v, Integer::sum));
            all.ioErrors += t.ioErrors;
            all.garbageRefused += t.garbageRefused;
            all.tokens += t.tokens;
        }
        return new Result(clients, sent.get(), all.statuses, all.ioErrors, all.garbageRefused, all.tokens, seconds, all.tokens / seconds,
                percentile(all.ttft, 50), percentile(all.ttft, 99), percentile(all.gaps, 50),
                percentile(all.gaps, 99));
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofMinutes(10))
                .header("Content-Type", "application/json");
        if (apiKey != null) {
            b.header("Authorization", "Bearer " + apiKey);
        }
        return b;
    }

    /** One streaming completion; counts content chunks as tokens; leaves after a few when {@code leave}. */
    private void stream(Tally t, String prompt, int maxTokens, boolean leave) {
        ObjectNode body = json.createObjectNode();
        body.put("prompt", prompt);
        body.put("max_tokens", maxTokens);
        body.put("temperature", 0.8);
        body.put("stream", true);
        long sentAt = System.nanoTime();
        try {
            HttpResponse<InputStream> r = http.send(request("/v1/completions")
                    .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                    HttpResponse.BodyHandlers.ofInputStream());
            t.statuses.merge(r.statusCode(), 1, Integer::sum);
            try (InputStream in = r.body()) {
                if (r.statusCode() != 200) {
                    in.readAllBytes();
                    if (r.statusCode() == 429) {
                        Thread.sleep(50);
                    }
                    return;
                }
                BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
                long last = 0;
                int chunks = 0;
                for (String line; (line = reader.readLine()) != null; ) {
                    if (!line.startsWith("data: {")) {
                        continue;
                    }
                    JsonNode chunk = json.readTree(line.substring(6));
                    JsonNode choices = chunk.path("choices");
                    if (choices.isEmpty() || choices.get(0).path("text").asText().isEmpty()) {
                        continue;
                    }
                    long now = System.nanoTime();
                    if (last == 0) {
                        t.ttft.add((now - sentAt) / 1e6);
                    } else {
                        t.gaps.add((now - last) / 1e6);
                    }
                    last = now;
                    t.tokens++;
                    if (leave && ++chunks == 3) {
                        return; // closing the body drops the connection mid-stream
                    }
                }
            }
        } catch (IOException e) {
            t.ioErrors++;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void garbage(Tally t) {
        String[] bodies = {"{", "[]", "{\"prompt\": 5}", "{\"max_tokens\": \"many\"}", "\u0000\u00ff",
            "{\"prompt\": \"x\", \"n\": 3}", "{\"model\": \"nope\"}"};
        String b = bodies[ThreadLocalRandom.current().nextInt(bodies.length)];
        try {
            HttpResponse<String> r = http.send(request("/v1/completions").POST(HttpRequest.BodyPublishers.ofString(b))
                    .build(), HttpResponse.BodyHandlers.ofString());
            // Garbage must be refused with 400/404; anything else counts as an error.
            if (r.statusCode() == 400 || r.statusCode() == 404) {
                t.garbageRefused++;
            } else {
                t.statuses.merge(r.statusCode(), 1, Integer::sum);
            }
        } catch (IOException e) {
            t.ioErrors++;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A gauge of the server's /metrics, or -1. */
    public double metric(String name) {
        try {
            String text = http.send(request("/metrics").GET().build(), HttpResponse.BodyHandlers.ofString()).body();
            for (String line : text.split("\n")) {
                if (line.startsWith(name + " ")) {
                    return Double.parseDouble(line.substring(name.length() + 1));
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return -1;
    }

    static double percentile(List<Double> values, double p) {
        if (values.isEmpty()) {
            return Double.NaN;
        }
        List<Double> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        int i = (int) Math.ceil(p / 100 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }
}
