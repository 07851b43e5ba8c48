package io.bitplane.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.server.LoadGenerator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code bitplane load}: a bounded load test of a running server (loopback), one line per concurrency level;
 * {@code --soak-minutes} runs one long abusive level and compares the server's threads and memory before and after.
 */
@Command(name = "load", mixinStandardHelpOptions = true,
        description = "Load-test a running OpenAI-compatible server (bounded: a fixed number of requests or minutes).")
final class LoadCommand implements Callable<Integer> {
    @Option(names = "--url", defaultValue = "http://127.0.0.1:8080", description = "Server. Default: "
            + "${DEFAULT-VALUE}.")
    URI url;

    @Option(names = "--api-key", description = "Bearer key, if the server wants one.")
    String apiKey;

    @Option(names = "--clients", split = ",", defaultValue = "1,4,16,64", description = "Concurrency levels. "
            + "Default: ${DEFAULT-VALUE}.")
    List<Integer> clients;

    @Option(names = "--requests", defaultValue = "0", description = "Requests per level (0: 2 x clients, at "
            + "least 8).")
    int requests;

    @Option(names = "--max-tokens", defaultValue = "64", description = "Tokens per request. Default: "
            + "${DEFAULT-VALUE}.")
    int maxTokens;

    @Option(names = "--prompt", defaultValue = "Once upon a time", description = "Prompt. Default: "
            + "${DEFAULT-VALUE}.")
    String prompt;

    @Option(names = "--soak-minutes", defaultValue = "0", description = "Run the largest level this long, with "
            + "clients leaving mid-stream and garbage requests, then compare threads and memory.")
    double soakMinutes;

    @Option(names = "--json", description = "Also write the results here.")
    Path jsonOut;

    /** Threads, heap after GC and resident bytes, once abandoned streams have ended (they end within a step). */
    private static double[] footprint(LoadGenerator load) throws InterruptedException {
        Thread.sleep(2000);
        return new double[] {load.metric("bitplane_jvm_threads"), load.metric("bitplane_jvm_heap_after_gc_bytes"),
            load.metric("process_resident_memory_bytes")};
    }

    @Override
    public Integer call() throws Exception {
        LoadGenerator load = new LoadGenerator(url, apiKey);
        if (load.metric("bitplane_active_sequences") < 0) {
            throw new IllegalArgumentException("no Bitplane server answers at " + url + " (start one with "
                    + "./bitplane serve)");
        }
        List<LoadGenerator.Result> results = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        System.out.println(LoadGenerator.Result.header());
        if (soakMinutes > 0) {
            // A warm-up at the same load first, so that the baseline already has its working set of threads,
            // heap and code; growth after that is what a leak would show.
            int c = clients.stream().mapToInt(Integer::intValue).max().orElse(16);
            double warmMinutes = Math.min(1, soakMinutes / 5);
            load.run(c, 0, maxTokens, prompt, warmMinutes * 60, true);
            double[] before = footprint(load);
            // Resident memory once a minute under load: it should level off, not climb.
            List<Double> residentMb = java.util.Collections.synchronizedList(new ArrayList<>());
            Thread sampler = Thread.ofPlatform().daemon().start(() -> {
                try {
                    while (true) {
                        Thread.sleep(60_000);
                        residentMb.add(Math.round(load.metric("process_resident_memory_bytes") / 1e5) / 10.0);
                    }
                } catch (InterruptedException e) {
                    // the soak is over
                }
            });
            LoadGenerator.Result r = load.run(c, 0, maxTokens, prompt, soakMinutes * 60, true);
            sampler.interrupt();
            double[] after = footprint(load);
            System.out.println(r.line());
            System.out.printf(Locale.ROOT, "soak %.1f min after %.1f min warm-up: %d garbage requests refused; "
                            + "threads %.0f -> %.0f; heap after GC %.1f -> %.1f MB; resident %.1f -> %.1f MB; "
                            + "active sequences after: %.0f%n", soakMinutes, warmMinutes, r.garbageRefused(),
                    before[0], after[0], before[1] / 1e6, after[1] / 1e6, before[2] / 1e6, after[2] / 1e6,
                    load.metric("bitplane_active_sequences"));
            System.out.println("resident MB each minute under load: " + residentMb);
            results.add(r);
            root.putPOJO("resident_mb_per_minute", List.copyOf(residentMb));
            root.put("soak_minutes", soakMinutes);
            root.put("threads_before", before[0]);
            root.put("threads_after", after[0]);
            root.put("heap_after_gc_bytes_before", before[1]);
            root.put("heap_after_gc_bytes_after", after[1]);
            root.put("resident_bytes_before", before[2]);
            root.put("resident_bytes_after", after[2]);
        } else {
            for (int c : clients) {
                int n = requests > 0 ? requests : Math.max(8, 2 * c);
                LoadGenerator.Result r = load.run(c, n, maxTokens, prompt, 0, false);
                System.out.println(r.line());
                results.add(r);
            }
        }
        if (jsonOut != null) {
            ArrayNode levels = root.putArray("levels");
            results.forEach(r -> levels.add(json.valueToTree(r)));
            root.put("url", url.toString());
            root.put("max_tokens", maxTokens);
            Files.writeString(jsonOut, json.writerWithDefaultPrettyPrinter().writeValueAsString(root));
        }
        return results.stream().anyMatch(r -> r.errors() > 0) ? 1 : 0;
    }
}
