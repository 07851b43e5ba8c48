package io.bitplane.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitplane.format.SharedData;
import io.bitplane.runtime.Model;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** /tokenize, /detokenize and /tokenizer_info, as vLLM's and llama.cpp's clients (lm-eval's) call them. */
class TokenizerRoutesTest {
    static final String KEY = "sk-tokenizer";
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static Model model;
    static DecodingServer server;

    @BeforeAll
    static void start() throws Exception {
        model = Model.open(SharedData.stories260K());
        server = DecodingServer.start(model, ServerConfig.defaults("stories260K").withPort(0).withApiKey(KEY));
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    static HttpResponse<String> call(String path, String body, String key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path));
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        b = body == null ? b.GET() : b.header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode ok(String path, String body) throws Exception {
        HttpResponse<String> r = call(path, body, KEY);
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    static int[] ids(JsonNode tokens) {
        int[] out = new int[tokens.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = tokens.get(i).isObject() ? tokens.get(i).get("id").asInt() : tokens.get(i).asInt();
        }
        return out;
    }

    @Test
    void tokenizeAsVllmAndLlamaCppDo() throws Exception {
        String text = "Once upon a time, Lily saw a cat.";
        int[] withBos = model.tokenizer().encode(text, true, false);
        int[] without = model.tokenizer().encode(text, false, false);
        JsonNode vllm = ok("/tokenize", "{\"prompt\": " + JSON.writeValueAsString(text) + "}");
        assertArrayEquals(withBos, ids(vllm.get("tokens")));
        assertEquals(withBos.length, vllm.get("count").asInt());
        assertEquals(model.config().contextLength(), vllm.get("max_model_len").asInt());
        assertArrayEquals(without, ids(ok("/tokenize", "{\"prompt\": " + JSON.writeValueAsString(text)
                + ", \"add_special_tokens\": false}").get("tokens")));
        assertArrayEquals(without, ids(ok("/tokenize", "{\"content\": " + JSON.writeValueAsString(text) + "}")
                .get("tokens")));
        JsonNode pieces = ok("/tokenize", "{\"content\": " + JSON.writeValueAsString(text)
                + ", \"add_special\": true, \"with_pieces\": true}").get("tokens");
        assertArrayEquals(withBos, ids(pieces));
        StringBuilder joined = new StringBuilder();
        pieces.forEach(p -> joined.append(p.get("piece").asText()));
        assertEquals(text, joined.toString());
        JsonNode chat = ok("/tokenize", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}");
        ChatTemplate template = ChatTemplate.forModel(model, w -> { });
        assertArrayEquals(model.tokenizer().encode(template.render(List.of(new ChatTemplate.Message("user", "Hi"))),
                true, false), ids(chat.get("tokens")));
    }

    @Test
    void detokenizeGivesTheTextBackUnderBothNames() throws Exception {
        String text = "The dog ran to the park.";
        int[] ids = model.tokenizer().encode(text, true, false);
        JsonNode out = ok("/detokenize", "{\"tokens\": " + Arrays.toString(ids) + "}");
        assertEquals(text, out.get("prompt").asText());
        assertEquals(text, out.get("content").asText());
    }

    @Test
    void tokenizerInfoNamesTheSpecialTokensAndTheTemplate() throws Exception {
        JsonNode info = ok("/tokenizer_info", null);
        assertEquals(new String(model.tokenizer().vocabulary().tokens().get(model.tokenizer().eos()),
                java.nio.charset.StandardCharsets.UTF_8), info.get("eos_token").asText());
        assertTrue(info.get("chat_template").asText().contains("messages"));
        assertEquals(model.tokenizer().vocabSize(), info.get("vocab_size").asInt());
    }

    @Test
    void badInputIsNamedAndTheKeyIsRequired() throws Exception {
        String[][] cases = {
            {"/tokenize", "{\"prompt\": 5}", "prompt"},
            {"/tokenize", "{\"content\": \"x\", \"with_pieces\": \"yes\"}", "with_pieces"},
            {"/tokenize", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}", "messages[0].role"},
            {"/detokenize", "{\"tokens\": [1, -1]}", "tokens"},
            {"/detokenize", "{\"tokens\": [100000]}", "tokens"},
            {"/detokenize", "{}", "tokens"},
        };
        for (String[] c : cases) {
            HttpResponse<String> r = call(c[0], c[1], KEY);
            assertEquals(400, r.statusCode(), c[1] + " " + r.body());
            assertEquals(c[2], JSON.readTree(r.body()).get("error").get("param").asText(), r.body());
            assertFalse(r.body().contains("Exception"), r.body());
        }
        assertEquals(401, call("/tokenize", "{\"prompt\": \"x\"}", null).statusCode());
        assertEquals(401, call("/tokenizer_info", null, "wrong").statusCode());
    }
}
