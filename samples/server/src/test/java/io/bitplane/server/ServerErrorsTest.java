package io.bitplane.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitplane.format.SharedData;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every refusal over raw HTTP: the status, OpenAI's error JSON naming the field, and never a stack trace. */
class ServerErrorsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static Model model;
    static DecodingServer server;
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeAll
    static void start() throws Exception {
        // The scalar backend on one thread: slow enough that a stream is still running when its client leaves.
        model = Model.open(SharedData.stories260K(), ModelOptions.defaults().withBackend("scalar").withThreads(1));
        server = DecodingServer.start(model, ServerConfig.defaults("stories260K").withPort(0)
                .withLimits(2, 2, 64, 500, 4096));
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    static URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.port() + path);
    }

    static HttpResponse<String> post(String path, String body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(uri(path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode error(HttpResponse<String> r, int status) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        assertFalse(r.body().contains("Exception") || r.body().contains("\tat "), r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertNotNull(e, r.body());
        assertFalse(e.get("message").asText().isEmpty());
        return e;
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource(delimiter = '|', value = {
        "/v1/completions|{\"prompt\": \"x\", \"max_tokens\": \"5\"}|max_tokens",
        "/v1/completions|{\"prompt\": \"x\", \"max_tokens\": 0}|max_tokens",
        "/v1/completions|{\"prompt\": \"x\", \"max_tokens\": 100000}|max_tokens",
        "/v1/completions|{\"prompt\": \"x\", \"temperature\": \"hot\"}|temperature",
        "/v1/completions|{\"prompt\": \"x\", \"temperature\": 5}|temperature",
        "/v1/completions|{\"prompt\": \"x\", \"top_p\": 0}|top_p",
        "/v1/completions|{\"prompt\": \"x\", \"stop\": 5}|stop",
        "/v1/completions|{\"prompt\": \"x\", \"stop\": [\"a\", \"\"]}|stop",
        "/v1/completions|{\"prompt\": \"x\", \"stop\": [\"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\", "
                + "\"10\", \"11\", \"12\", \"13\", \"14\", \"15\", \"16\", \"17\"]}|stop",
        "/v1/completions|{\"prompt\": \"x\", \"stream\": \"yes\"}|stream",
        "/v1/completions|{\"prompt\": \"x\", \"seed\": 1.5}|seed",
        "/v1/completions|{\"prompt\": \"x\", \"n\": 0}|n",
        "/v1/completions|{\"prompt\": \"x\", \"presence_penalty\": 3}|presence_penalty",
        "/v1/completions|{\"prompt\": \"x\", \"echo\": true, \"logprobs\": 1, \"stream\": true}|echo",
        "/v1/completions|{\"prompt\": \"x\", \"echo\": \"yes\"}|echo",
        "/v1/completions|{\"prompt\": \"x\", \"echo\": true, \"max_tokens\": -1}|max_tokens",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"echo\": true}|echo",
        "/v1/completions|{\"prompt\": \"x\", \"suffix\": \"end\"}|suffix",
        "/v1/completions|{\"prompt\": \"x\", \"best_of\": 3}|best_of",
        "/v1/completions|{\"prompt\": \"x\", \"grammar\": \"root ::= [a\"}|grammar",
        "/v1/completions|{\"prompt\": \"x\", \"grammar\": \"root ::= x\"}|grammar",
        "/v1/completions|{\"prompt\": \"x\", \"grammar\": 5}|grammar",
        "/v1/completions|{\"prompt\": \"x\", \"grammar\": \"root ::= [a]\", \"json_schema\": {}}|json_schema",
        "/v1/completions|{\"prompt\": \"x\", \"json_schema\": {\"type\": \"string\"}}|json_schema",
        "/v1/completions|{\"prompt\": \"x\", \"ignore_eos\": true}|ignore_eos",
        "/v1/completions|{\"prompt\": \"x\", \"mirostat\": 2}|mirostat",
        "/v1/completions|{\"prompt\": \"x\", \"typical_p\": 0.5}|typical_p",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"modalities\": "
                + "[\"text\", \"audio\"]}|modalities",
        "/v1/completions|{\"prompt\": \"x\", \"frequency_penalty\": \"high\"}|frequency_penalty",
        "/v1/completions|{\"prompt\": \"x\", \"logit_bias\": [1]}|logit_bias",
        "/v1/completions|{\"prompt\": \"x\", \"logit_bias\": {\"hello\": 1}}|logit_bias",
        "/v1/completions|{\"prompt\": \"x\", \"logit_bias\": {\"-3\": 1}}|logit_bias",
        "/v1/completions|{\"prompt\": \"x\", \"logit_bias\": {\"3\": 101}}|logit_bias",
        "/v1/completions|{\"prompt\": \"x\", \"logit_bias\": {\"512\": 1}}|logit_bias",
        "/v1/completions|{\"prompt\": \"x\", \"repeat_last_n\": -2}|repeat_last_n",
        "/v1/completions|{\"prompt\": \"x\", \"repeat_penalty\": 1.1, \"repetition_penalty\": 1.1}|repeat_penalty",
        "/v1/completions|{\"prompt\": \"x\", \"model\": 5}|model",
        "/v1/completions|{\"prompt\": 17}|prompt",
        "/v1/completions|{\"prompt\": []}|prompt",
        "/v1/completions|{\"prompt\": [\"a\", [1]]}|prompt",
        "/v1/completions|{\"prompt\": [[1], []]}|prompt",
        "/v1/completions|{\"prompt\": \"x\", \"n\": 129}|n",
        "/v1/completions|{\"prompt\": \"x\", \"n\": 3}|n",
        "/v1/completions|{\"prompt\": [\"a\", \"b\", \"c\"]}|prompt",
        "/v1/completions|{\"prompt\": [1, \"a\"]}|prompt",
        "/v1/completions|{\"prompt\": [1, -2]}|prompt",
        "/v1/completions|{\"prompt\": [1, 100000]}|prompt",
        "/v1/chat/completions|{\"model\": \"stories260K\"}|messages",
        "/v1/embeddings|{}|input",
        "/v1/embeddings|{\"input\": \"\"}|input",
        "/v1/embeddings|{\"input\": []}|input",
        "/v1/embeddings|{\"input\": [\"a\", 5]}|input",
        "/v1/embeddings|{\"input\": [1, 100000]}|input",
        "/v1/embeddings|{\"input\": \"a\", \"encoding_format\": \"int8\"}|encoding_format",
        "/v1/embeddings|{\"input\": \"a\", \"dimensions\": 0}|dimensions",
        "/v1/embeddings|{\"input\": \"a\", \"dimensions\": 65}|dimensions",
        "/v1/chat/completions|{\"messages\": []}|messages",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}|messages[0].role",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": 5}]}|messages[0].content",
        "/v1/chat/completions|{\"messages\": [\"hi\"]}|messages[0]",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": {}}|tools",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": "
                + "\"code\"}]}|tools[0]",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": "
                + "\"function\", \"function\": {\"name\": \"a b\"}}]}|tools[0].function.name",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": "
                + "\"function\", \"function\": {\"name\": \"f\"}}, {\"type\": \"function\", \"function\": "
                + "{\"name\": \"f\"}}]}|tools[1].function.name",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": "
                + "\"function\", \"function\": {\"name\": \"f\", \"parameters\": 3}}]}|tools[0].function.parameters",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tool_choice\": "
                + "\"required\"}|tool_choice",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tool_choice\": {\"type\": "
                + "\"function\", \"function\": {\"name\": \"f\"}}}|tool_choice",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tool_choice\": 1}"
                + "|tool_choice",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": "
                + "\"function\", \"function\": {\"name\": \"f\"}}], \"tool_choice\": {\"type\": \"function\", "
                + "\"function\": {\"name\": \"g\"}}}|tool_choice.function.name",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": "
                + "\"function\", \"function\": {\"name\": \"f\"}}], \"tool_choice\": \"required\", "
                + "\"response_format\": {\"type\": \"json_object\"}}|tool_choice",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"parallel_tool_calls\": "
                + "\"no\"}|parallel_tool_calls",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response_format\": "
                + "{\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\"}}}|response_format.json_schema.schema",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response_format\": "
                + "{\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", \"schema\": {\"type\": \"object\", "
                + "\"properties\": {\"a\": {\"type\": \"string\", \"pattern\": \"x\"}}}}}}"
                + "|response_format.json_schema.schema",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response_format\": "
                + "{\"type\": \"xml\"}}|response_format",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response_format\": "
                + "\"json\"}|response_format",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"functions\": []}|functions",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": {}}]}|messages[0].tool_calls",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": [{\"function\": {}}]}]}"
                + "|messages[0].tool_calls[0]",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": [{\"function\": {\"name\": "
                + "\"f\", \"arguments\": {}}}]}]}|messages[0].tool_calls[0].function.arguments",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"tool\", \"content\": \"x\", \"tool_call_id\": 5}]}"
                + "|messages[0].tool_call_id",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": 3}|logprobs",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_logprobs\": 2}"
                + "|top_logprobs",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": true, "
                + "\"top_logprobs\": 21}|top_logprobs",
        "/v1/completions|{\"prompt\": \"x\", \"logprobs\": 6}|logprobs",
        "/v1/completions|{\"prompt\": \"x\", \"logprobs\": true}|logprobs",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"reasoning_format\": "
                + "\"hidden\"}|reasoning_format",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"chat_template_kwargs\": "
                + "[]}|chat_template_kwargs",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"chat_template_kwargs\": "
                + "{\"messages\": []}}|chat_template_kwargs",
        "/v1/chat/completions|{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\", \"reasoning_content\": "
                + "1}]}|messages[0].reasoning_content",
    })
    void wrongFieldsAreNamed(String path, String body, String param) throws Exception {
        JsonNode e = error(post(path, body), 400);
        assertEquals(param, e.get("param").asText(), e.toString());
        assertTrue(e.get("message").asText().contains(param.replaceAll("\\[.*", "")), e.toString());
    }

    /** The unimplemented fields' neutral values, as clients send them by default, are accepted. */
    @Test
    void unimplementedFieldsAskingForNothingAreAccepted() throws Exception {
        var r = post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 2, \"suffix\": \"\", \"best_of\": 1, "
                + "\"ignore_eos\": false, \"mirostat\": 0, \"typical_p\": 1.0, \"grammar\": \"\", \"audio\": null, "
                + "\"frequency_penalty\": 0, \"presence_penalty\": 0, \"logit_bias\": {}}");
        assertEquals(200, r.statusCode(), r.body());
        r = post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], "
                + "\"max_tokens\": 2, \"modalities\": [\"text\"], \"typical_p\": 1}");
        assertEquals(200, r.statusCode(), r.body());
    }

    @Test
    void malformedJsonAndNonObjectsAre400() throws Exception {
        assertTrue(error(post("/v1/completions", "{\"prompt\": "), 400).get("message").asText()
                .contains("not valid JSON"));
        error(post("/v1/completions", "[1, 2]"), 400);
        error(post("/v1/chat/completions", "\u0000\u0001garbage"), 400);
        error(post("/v1/completions", ""), 400);
    }

    @Test
    void unknownModelsAndPathsAre404AndWrongMethods405() throws Exception {
        JsonNode e = error(post("/v1/completions", "{\"model\": \"gpt-9\", \"prompt\": \"x\"}"), 404);
        assertEquals("model_not_found", e.get("code").asText());
        assertEquals("model_not_found", error(post("/v1/embeddings", "{\"model\": \"gpt-9\", \"input\": \"x\"}"), 404)
                .get("code").asText());
        error(HTTP.send(HttpRequest.newBuilder(uri("/v2/nothing")).build(), HttpResponse.BodyHandlers.ofString()),
                404);
        error(HTTP.send(HttpRequest.newBuilder(uri("/v1/completions")).build(),
                HttpResponse.BodyHandlers.ofString()), 405);
    }

    @Test
    void limitsGive413And400() throws Exception {
        String big = "{\"prompt\": \"" + "a".repeat(5000) + "\"}";
        error(post("/v1/completions", big), 413);
        String longPrompt = "{\"prompt\": \"" + "Once upon a time there was a cat. ".repeat(20) + "\"}";
        assertEquals("prompt", error(post("/v1/completions", longPrompt), 400).get("param").asText());
    }

    @Test
    void floodingPastTheQueueGivesOnly429sAndTheServerKeepsServing() throws Exception {
        List<CompletableFuture<HttpResponse<String>>> all = new ArrayList<>();
        String body = "{\"prompt\": \"Once\", \"max_tokens\": 400, \"temperature\": 0}";
        for (int i = 0; i < 24; i++) {
            all.add(HTTP.sendAsync(HttpRequest.newBuilder(uri("/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString()));
        }
        int ok = 0;
        int refused = 0;
        for (CompletableFuture<HttpResponse<String>> f : all) {
            HttpResponse<String> r = f.get();
            if (r.statusCode() == 429) {
                refused++;
                assertEquals("1", r.headers().firstValue("Retry-After").orElse(null));
                error(r, 429);
            } else {
                assertEquals(200, r.statusCode(), r.body());
                ok++;
            }
        }
        assertTrue(ok >= 2 && refused >= 1, ok + " served, " + refused + " refused");
        assertEquals(200, post("/v1/completions", "{\"prompt\": \"Once\", \"max_tokens\": 5}").statusCode());
    }

    @Test
    void aClientThatLeavesMidStreamFreesItsSequence() throws Exception {
        double before = metric("bitplane_generated_tokens_total");
        HttpResponse<InputStream> r = HTTP.send(HttpRequest.newBuilder(uri("/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"\", \"max_tokens\": 500, \"temperature\": 0,"
                        + " \"stream\": true}")).build(), HttpResponse.BodyHandlers.ofInputStream());
        BufferedReader reader = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
        assertTrue(reader.readLine().startsWith("data: {"));
        r.body().close();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (metric("bitplane_active_sequences") > 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(0, metric("bitplane_active_sequences"));
        assertTrue(metric("bitplane_generated_tokens_total") - before < 500, "the sequence ran to its end");
    }

    @Test
    void healthAndMetricsAnswer() throws Exception {
        HttpResponse<String> h = HTTP.send(HttpRequest.newBuilder(uri("/health")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, h.statusCode());
        assertEquals("ok", JSON.readTree(h.body()).get("status").asText());
        String m = metrics();
        for (String name : List.of("bitplane_requests_total", "bitplane_queue_depth", "bitplane_active_sequences",
                "bitplane_time_to_first_token_seconds_bucket", "bitplane_token_latency_seconds_count")) {
            assertTrue(m.contains(name), name);
        }
    }

    /** A prompt sent twice is found in a session's cache the second time, and /metrics counts it. */
    @Test
    void cachedPromptTokensAreCounted() throws Exception {
        String body = "{\"prompt\": \"Once upon a time there was a little dog named Max.\", \"max_tokens\": 2}";
        assertEquals(200, post("/v1/completions", body).statusCode());
        double before = metric("bitplane_prompt_tokens_cached_total");
        HttpResponse<String> again = post("/v1/completions", body);
        long cached = JSON.readTree(again.body()).at("/usage/prompt_tokens_details/cached_tokens").asLong();
        assertTrue(cached > 5, again.body());
        assertEquals(before + cached, metric("bitplane_prompt_tokens_cached_total"));
    }

    static String metrics() throws Exception {
        return HTTP.send(HttpRequest.newBuilder(uri("/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
    }

    static double metric(String name) throws Exception {
        for (String line : metrics().split("\n")) {
            if (line.startsWith(name + " ")) {
                return Double.parseDouble(line.substring(name.length() + 1));
            }
        }
        throw new AssertionError("no metric " + name);
    }
}
