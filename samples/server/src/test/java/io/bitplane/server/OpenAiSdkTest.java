package io.bitplane.server;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.NotFoundException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import io.bitplane.format.SharedData;
import io.bitplane.runtime.Model;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The official OpenAI Java SDK, as a real client, against the server on stories260K. */
class OpenAiSdkTest {
    static final String KEY = "sk-test-bitplane";
    static Model model;
    static DecodingServer server;
    static OpenAIClient client;
    static String golden;

    @BeforeAll
    static void start() throws Exception {
        golden = Files.readString(SharedData.file("golden/stories260K-greedy.txt")).stripTrailing();
        model = Model.open(SharedData.stories260K());
        server = DecodingServer.start(model, ServerConfig.defaults("stories260K").withPort(0).withApiKey(KEY));
        client = OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + server.port() + "/v1").apiKey(KEY)
                .maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
        model.close();
    }

    static CompletionCreateParams greedyCompletion(int maxTokens) {
        return CompletionCreateParams.builder().model("stories260K").prompt("").maxTokens(maxTokens)
                .temperature(0.0).build();
    }

    @Test
    void greedyCompletionIsTheGoldenText() {
        Completion c = client.completions().create(greedyCompletion(256));
        assertEquals(golden, c.choices().get(0).text());
        assertEquals("length", c.choices().get(0).finishReason().asString());
        assertEquals(256, c.usage().orElseThrow().completionTokens());
        assertEquals(1, c.usage().orElseThrow().promptTokens());
    }

    /** A prompt of token ids (as lm-eval and other tokenizing clients send it) is used as it is: BOS alone. */
    @Test
    void aPromptOfTokenIdsIsUsedAsItIs() {
        int bos = model.tokenizer().bos();
        for (CompletionCreateParams.Builder b : List.of(CompletionCreateParams.builder().promptOfArrayOfTokens(
                List.of((long) bos)), CompletionCreateParams.builder().promptOfArrayOfTokenArrays(
                List.of(List.of((long) bos))))) {
            Completion c = client.completions().create(b.model("stories260K").maxTokens(256).temperature(0.0).build());
            assertEquals(golden, c.choices().get(0).text());
            assertEquals(1, c.usage().orElseThrow().promptTokens());
        }
    }

    @Test
    void streamedCompletionIsTheGoldenTextToo() {
        StringBuilder text = new StringBuilder();
        try (StreamResponse<Completion> stream = client.completions().createStreaming(greedyCompletion(256))) {
            stream.stream().forEach(chunk -> chunk.choices().forEach(choice -> text.append(choice.text())));
        }
        assertEquals(golden, text.toString());
    }

    @Test
    void concurrentStreamsEachGetTheGoldenText() throws Exception {
        List<CompletableFuture<String>> futures = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            futures.add(CompletableFuture.supplyAsync(() -> {
                StringBuilder text = new StringBuilder();
                try (StreamResponse<Completion> s = client.completions().createStreaming(greedyCompletion(256))) {
                    s.stream().forEach(chunk -> chunk.choices().forEach(choice -> text.append(choice.text())));
                }
                return text.toString();
            }));
        }
        for (CompletableFuture<String> f : futures) {
            assertEquals(golden, f.get());
        }
    }

    @Test
    void chatStreamingAndWholeAgree() {
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model("stories260K")
                .addSystemMessage("You tell stories.").addUserMessage("Tell me about a cat.")
                .maxCompletionTokens(40).temperature(0.0)
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
        ChatCompletion whole = client.chat().completions().create(params);
        String content = whole.choices().get(0).message().content().orElseThrow();
        assertFalse(content.isEmpty());
        assertEquals(40, whole.usage().orElseThrow().completionTokens());

        StringBuilder streamed = new StringBuilder();
        List<String> finishes = new ArrayList<>();
        long[] usage = new long[1];
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(params)) {
            s.stream().forEach(chunk -> {
                chunk.usage().ifPresent(u -> usage[0] = u.completionTokens());
                chunk.choices().forEach(c -> {
                    c.delta().content().ifPresent(streamed::append);
                    c.finishReason().ifPresent(f -> finishes.add(f.asString()));
                });
            });
        }
        assertEquals(content, streamed.toString());
        assertEquals(List.of("length"), finishes);
        assertEquals(40, usage[0]);
    }

    @Test
    void stopStringsEndTheCompletion() {
        CompletionCreateParams params = CompletionCreateParams.builder().model("stories260K").prompt("")
                .maxTokens(256).temperature(0.0).stop(", ").build();
        Completion c = client.completions().create(params);
        assertEquals(golden.substring(0, golden.indexOf(", ")), c.choices().get(0).text());
        assertEquals("stop", c.choices().get(0).finishReason().asString());
        // More than OpenAI's 4, as lm-eval sends them: the earliest in the text ends it.
        Completion many = client.completions().create(params.toBuilder().stopOfStrings(List.of("\n\n", "Question:",
                "</s>", "<|im_end|>", "zebra", ", ")).build());
        assertEquals(c.choices().get(0).text(), many.choices().get(0).text());
    }

    /**
     * Chat logprobs: one entry per generated token, whose texts make up the reply; greedy takes each step's likeliest
     * token; a stream gives the same entries, chunk by chunk.
     */
    @Test
    void chatLogprobsCoverEveryTokenOfTheReply() {
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model("stories260K")
                .addUserMessage("Tell me a story.").maxCompletionTokens(24).temperature(0.0).logprobs(true)
                .topLogprobs(2).build();
        ChatCompletion c = client.chat().completions().create(params);
        var entries = c.choices().get(0).logprobs().orElseThrow().content().orElseThrow();
        assertEquals(c.usage().orElseThrow().completionTokens(), entries.size());
        StringBuilder text = new StringBuilder();
        for (var e : entries) {
            text.append(e.token());
            assertEquals(2, e.topLogprobs().size());
            assertEquals(e.token(), e.topLogprobs().get(0).token());
            assertEquals(e.logprob(), e.topLogprobs().get(0).logprob());
            assertTrue(e.logprob() <= 0 && e.topLogprobs().get(1).logprob() <= e.logprob(), e.toString());
            assertEquals(e.token(), new String(e.bytes().orElseThrow().stream().map(Long::byteValue)
                    .collect(java.io.ByteArrayOutputStream::new, java.io.ByteArrayOutputStream::write, (a, b) -> { })
                    .toByteArray(), java.nio.charset.StandardCharsets.UTF_8));
        }
        assertEquals(c.choices().get(0).message().content().orElseThrow(), text.toString());
        List<Double> streamed = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            stream.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.logprobs().flatMap(l -> l.content())
                    .ifPresent(l -> l.forEach(e -> streamed.add(e.logprob())))));
        }
        assertEquals(entries.stream().map(e -> e.logprob()).toList(), streamed);
    }

    /**
     * A conversation's next turn, which repeats the earlier ones, finds them in the session that ran them: usage
     * reports them as cached_tokens, and the reply is the one a server that had computed nothing gives.
     */
    @Test
    void aConversationsNextTurnReusesItsCachedPrompt() throws Exception {
        ChatCompletionCreateParams first = ChatCompletionCreateParams.builder().model("stories260K")
                .addUserMessage("Tell me about a cat.").maxCompletionTokens(20).temperature(0.0).build();
        ChatCompletion c1 = client.chat().completions().create(first);
        ChatCompletionCreateParams second = first.toBuilder()
                .addMessage(c1.choices().get(0).message()).addUserMessage("And then?").build();
        ChatCompletion c2 = client.chat().completions().create(second);
        long cached = c2.usage().orElseThrow().promptTokensDetails().orElseThrow().cachedTokens().orElseThrow();
        assertTrue(cached > c1.usage().orElseThrow().promptTokens(), cached + " " + c2.usage());
        try (DecodingServer other = DecodingServer.start(model, ServerConfig.defaults("stories260K").withPort(0)
                .withApiKey(KEY));
             var otherClient = new AutoCloseableClient(OpenAIOkHttpClient.builder()
                     .baseUrl("http://127.0.0.1:" + other.port() + "/v1").apiKey(KEY).maxRetries(0).build())) {
            ChatCompletion fresh = otherClient.client().chat().completions().create(second);
            assertEquals(0L, fresh.usage().orElseThrow().promptTokensDetails().orElseThrow().cachedTokens()
                    .orElseThrow());
            assertEquals(fresh.choices().get(0).message().content(), c2.choices().get(0).message().content());
        }
    }

    record AutoCloseableClient(OpenAIClient client) implements AutoCloseable {
        @Override
        public void close() {
            client.close();
        }
    }

    /**
     * JSON mode: every reply is an object, or the start of one when the token limit cut it (stories260K has never
     * seen JSON: the constraint alone makes it write some, such as {"Can I play with it?" : "Can I ...").
     */
    @Test
    void jsonModeRepliesAreJsonObjects() throws Exception {
        for (long seed = 1; seed <= 4; seed++) {
            ChatCompletion c = client.chat().completions().create(ChatCompletionCreateParams.builder()
                    .model("stories260K").addUserMessage("Reply in JSON.").maxCompletionTokens(200).seed(seed)
                    .responseFormat(com.openai.models.ResponseFormatJsonObject.builder().build()).build());
            String text = c.choices().get(0).message().content().orElseThrow();
            var check = io.bitplane.runtime.JsonSchemaConstraint.anyObject();
            check.accept(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(check.complete() ? "stop" : "length", c.choices().get(0).finishReason().asString(), text);
            if (check.complete()) {
                assertTrue(new com.fasterxml.jackson.databind.ObjectMapper().readTree(text).isObject(), text);
            }
        }
    }

    static com.openai.models.chat.completions.ChatCompletionNamedToolChoice named(String function) {
        return com.openai.models.chat.completions.ChatCompletionNamedToolChoice.builder().function(
                com.openai.models.chat.completions.ChatCompletionNamedToolChoice.Function.builder().name(function)
                        .build()).build();
    }

    /**
     * tool_choice naming a function makes even stories260K call it, in the form the default template describes,
     * its arguments in the shape of the function's parameters (get_weather's required city comes first): the
     * reply reads back as a call of that function, or, cut by the token limit, is the start of one.
     */
    @Test
    void aNamedCallsArgumentsFollowItsParameters() throws Exception {
        for (long seed = 1; seed <= 3; seed++) {
            ChatCompletion c = client.chat().completions().create(ChatCompletionCreateParams.builder()
                    .model("stories260K").addUserMessage("Weather?").maxCompletionTokens(120).seed(seed)
                    .addTool(ToolCallsTest.weatherTool()).toolChoice(named("get_weather")).build());
            var choice = c.choices().get(0);
            String written = choice.finishReason().asString().equals("tool_calls")
                    ? choice.message().toolCalls().orElseThrow().get(0).asFunction().function().arguments()
                    : choice.message().content().orElseThrow().replaceFirst("^\\{\"name\": \"get_weather\", "
                            + "\"arguments\": ", "");
            assertTrue(written.matches("(?s)\\{\\s*\"city\"\\s*:.*"), choice.toString());
        }
    }

    /**
     * tool_choice naming a function makes even stories260K call it, in the form the default template describes:
     * the reply reads back as a call of that function (or, cut by the token limit, is the start of one).
     */
    @Test
    void aNamedToolChoiceMakesTheModelCallThatFunction() throws Exception {
        for (long seed = 1; seed <= 3; seed++) {
            ChatCompletion c = client.chat().completions().create(ChatCompletionCreateParams.builder()
                    .model("stories260K").addUserMessage("What time is it?").maxCompletionTokens(200).seed(seed)
                    .addTool(ToolCallsTest.weatherTool()).addTool(com.openai.models.chat.completions
                            .ChatCompletionFunctionTool.builder().function(com.openai.models.FunctionDefinition
                                    .builder().name("get_time").build()).build())
                    .toolChoice(named("get_time")).build());
            var choice = c.choices().get(0);
            if (choice.finishReason().asString().equals("tool_calls")) {
                var call = choice.message().toolCalls().orElseThrow().get(0).asFunction().function();
                assertEquals("get_time", call.name());
                assertTrue(new com.fasterxml.jackson.databind.ObjectMapper().readTree(call.arguments()).isObject());
            } else {
                assertEquals("length", choice.finishReason().asString());
                assertTrue(choice.message().content().orElseThrow().startsWith("{\"name\": \"get_time\", "
                        + "\"arguments\": {"), choice.message().content().orElseThrow());
            }
        }
    }

    /**
     * Structured outputs: with a JSON schema, even stories260K writes values in the schema's shape (a whole one
     * at "stop", else the start of one), keys in the schema's order.
     */
    @Test
    void aJsonSchemaShapesTheReply() throws Exception {
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        String schema = "{\"type\": \"object\", \"properties\": {\"title\": {\"type\": \"string\"}, "
                + "\"mood\": {\"enum\": [\"happy\", \"sad\"]}, \"pages\": {\"type\": \"integer\"}}, "
                + "\"required\": [\"title\", \"mood\", \"pages\"], \"additionalProperties\": false}";
        int whole = 0;
        for (long seed = 1; seed <= 3; seed++) {
            ChatCompletion c = client.chat().completions().create(ChatCompletionCreateParams.builder()
                    .model("stories260K").addUserMessage("A book, please.").maxCompletionTokens(300).seed(seed)
                    .putAdditionalBodyProperty("response_format", com.openai.core.JsonValue.from(Map.of("type",
                            "json_schema", "json_schema", Map.of("name", "book", "schema",
                                    mapper.readValue(schema, Map.class))))).build());
            String text = c.choices().get(0).message().content().orElseThrow();
            @SuppressWarnings("unchecked")
            Map<String, Object> parsed = mapper.readValue(schema, Map.class);
            io.bitplane.runtime.TokenConstraint check = io.bitplane.runtime.JsonSchemaConstraint.compile(parsed).get();
            check.accept(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(check.complete() ? "stop" : "length", c.choices().get(0).finishReason().asString(), text);
            if (check.complete()) {
                var node = mapper.readTree(text);
                List<String> keys = new java.util.ArrayList<>();
                node.fieldNames().forEachRemaining(keys::add);
                assertEquals(List.of("title", "mood", "pages"), keys, text);
                assertTrue(List.of("happy", "sad").contains(node.get("mood").asText()) && node.get("pages").isInt(),
                        text);
                whole++;
            }
        }
        assertTrue(whole > 0, "stories260K completes the schema's short object");
    }

    /**
     * frequency_penalty, presence_penalty and logit_bias reach the sampler as given: the reply is the runtime's own
     * for the same settings, and a ban on greedy's first token changes the story's start.
     */
    @Test
    void penaltiesAndLogitBiasShapeTheReply() {
        Completion penalized = client.completions().create(greedyCompletion(40).toBuilder().frequencyPenalty(0.5)
                .presencePenalty(1.5).build());
        String expected;
        try (io.bitplane.runtime.Session s = model.newSession()) {
            expected = s.generate(io.bitplane.runtime.GenerationRequest.of("", 40).withSampler(
                    io.bitplane.runtime.SamplerSettings.GREEDY.withPenalties(0.5f, 1.5f)), t -> { }).text();
        }
        assertEquals(expected, penalized.choices().get(0).text());
        assertFalse(golden.startsWith(expected), expected);
        int first = model.tokenizer().encode(golden, false, false)[0];
        Completion banned = client.completions().create(greedyCompletion(5).toBuilder().logitBias(
                CompletionCreateParams.LogitBias.builder().putAdditionalProperty(Integer.toString(first),
                        com.openai.core.JsonValue.from(-100)).build()).build());
        String text = banned.choices().get(0).text();
        assertFalse(text.isEmpty() || golden.startsWith(text), text);
    }

    /**
     * What lm-eval's local-completions sends to score a text (prompt as token ids, max_tokens 1, logprobs 1, echo):
     * the text is the prompt's and the new token's, the log-probabilities are the prompt's tokens' (the first has
     * none), scored as the runtime scores the prompt, then the new token's; with max_tokens 0, the prompt's alone.
     */
    @Test
    void echoWithLogprobsScoresThePromptAsEvaluationHarnessesAsk() {
        int[] ids = model.tokenizer().encode("Once upon a time, there was a little girl named Lily.", true, false);
        List<Long> prompt = java.util.Arrays.stream(ids).mapToObj(i -> (long) i).toList();
        double nll;
        try (io.bitplane.runtime.Session s = model.newSession()) {
            nll = s.score(ids).negativeLogLikelihood();
        }
        for (long maxTokens : new long[] {1, 0}) {
            Completion c = client.completions().create(CompletionCreateParams.builder().model("stories260K")
                    .promptOfArrayOfTokenArrays(List.of(prompt)).maxTokens(maxTokens).temperature(0.0).logprobs(1L)
                    .echo(true).seed(1234).build());
            var choice = c.choices().get(0);
            var l = choice.logprobs().orElseThrow();
            List<String> tokens = l.tokens().orElseThrow();
            List<Double> values = l.tokenLogprobs().orElseThrow();
            assertEquals(ids.length + maxTokens, tokens.size());
            assertEquals(choice.text(), String.join("", tokens));
            assertTrue(choice.text().startsWith("Once upon a time, there was a little girl named Lily."),
                    choice.text());
            assertEquals(null, values.get(0));
            assertEquals(null, l.topLogprobs().orElseThrow().get(0));
            double sum = 0;
            for (int i = 1; i < ids.length; i++) {
                sum -= values.get(i);
                var top = l.topLogprobs().orElseThrow().get(i)._additionalProperties();
                assertEquals(1, top.size(), top.toString());
                assertTrue(top.values().iterator().next().convert(Double.class) >= values.get(i) - 1e-6);
            }
            assertEquals(nll, sum, 1e-3);
            assertEquals(maxTokens, c.usage().orElseThrow().completionTokens());
            assertEquals(ids.length, c.usage().orElseThrow().promptTokens());
            assertEquals(0L, l.textOffset().orElseThrow().get(0));
        }
        // lm-eval's batches: [[ids], [ids]], one scored choice each, in order.
        Completion batch = client.completions().create(CompletionCreateParams.builder().model("stories260K")
                .promptOfArrayOfTokenArrays(List.of(prompt, prompt.subList(0, 5))).maxTokens(0L).logprobs(0L)
                .echo(true).build());
        assertEquals(ids.length, batch.choices().get(0).logprobs().orElseThrow().tokens().orElseThrow().size());
        assertEquals(5, batch.choices().get(1).logprobs().orElseThrow().tokens().orElseThrow().size());
        assertEquals(ids.length + 5, batch.usage().orElseThrow().promptTokens());
    }

    /** A streamed completion with echo begins with the prompt's text. */
    @Test
    void anEchoedStreamBeginsWithThePrompt() {
        StringBuilder text = new StringBuilder();
        try (StreamResponse<Completion> s = client.completions().createStreaming(greedyCompletion(20).toBuilder()
                .prompt("Once upon a time").echo(true).build())) {
            s.stream().forEach(chunk -> chunk.choices().forEach(c -> text.append(c.text())));
        }
        String alone = client.completions().create(greedyCompletion(20).toBuilder().prompt("Once upon a time")
                .build()).choices().get(0).text();
        assertEquals("Once upon a time" + alone, text.toString());
    }

    /** What the runtime writes for {@code prompt} sampled at 0.8 with {@code seed}, alone. */
    static String sampledAlone(String prompt, int tokens, long seed) {
        try (io.bitplane.runtime.Session s = model.newSession()) {
            return s.generate(io.bitplane.runtime.GenerationRequest.of(prompt, tokens)
                    .withSampler(io.bitplane.runtime.SamplerSettings.of(0.8f, 1f, seed)), t -> { }).text();
        }
    }

    /**
     * A batch of prompts times n: the choices come prompt by prompt, each the runtime's text for its prompt with
     * the request's seed plus its number among its prompt's choices; the usage counts each prompt once.
     */
    @Test
    void promptBatchesAndNGiveOneChoiceEach() {
        List<String> prompts = List.of("Once upon a time", "The dog");
        Completion c = client.completions().create(CompletionCreateParams.builder().model("stories260K")
                .promptOfArrayOfStrings(prompts).n(3).maxTokens(25).temperature(0.8).seed(40).build());
        assertEquals(6, c.choices().size());
        java.util.Set<String> texts = new java.util.HashSet<>();
        for (int i = 0; i < 6; i++) {
            var choice = c.choices().get(i);
            assertEquals(i, choice.index());
            assertEquals(sampledAlone(prompts.get(i / 3), 25, 40 + i % 3), choice.text(), "choice " + i);
            texts.add(choice.text());
        }
        assertEquals(6, texts.size(), "each choice its own draw");
        int promptTokens = prompts.stream().mapToInt(p -> model.tokenizer().encode(p, true, false).length).sum();
        assertEquals(promptTokens, c.usage().orElseThrow().promptTokens());
        long generated = c.usage().orElseThrow().completionTokens();
        assertTrue(generated > 6 && generated <= 6 * 25, c.usage().toString());
    }

    /** Streamed choices interleave; each index's chunks make the same text as the whole response's choice. */
    @Test
    void streamedChoicesCarryTheirIndex() {
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model("stories260K")
                .addUserMessage("Tell me a story.").n(2).maxCompletionTokens(30).temperature(0.9).seed(11).build();
        ChatCompletion whole = client.chat().completions().create(params);
        StringBuilder[] texts = {new StringBuilder(), new StringBuilder()};
        int[] finishes = new int[2];
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(params)) {
            s.stream().forEach(chunk -> chunk.choices().forEach(ch -> {
                ch.delta().content().ifPresent(texts[(int) ch.index()]::append);
                ch.finishReason().ifPresent(f -> finishes[(int) ch.index()]++);
            }));
        }
        for (int i = 0; i < 2; i++) {
            assertEquals(whole.choices().get(i).message().content().orElseThrow(), texts[i].toString());
            assertEquals(1, finishes[i]);
        }
        assertFalse(texts[0].toString().equals(texts[1].toString()));
    }

    /** llama.cpp's grammar (GBNF) and json_schema fields, as its clients send them in the request body. */
    @Test
    void llamaCppsGrammarAndJsonSchemaHoldTheReply() throws Exception {
        String grammar = "root ::= \"Once upon a time, there was a \" [a-z]+ (\" \" [a-z]+)* \".\"";
        for (long seed = 1; seed <= 3; seed++) {
            Completion c = client.completions().create(greedyCompletion(40).toBuilder().temperature(0.9).seed(seed)
                    .putAdditionalBodyProperty("grammar", com.openai.core.JsonValue.from(grammar)).build());
            String text = c.choices().get(0).text();
            var check = io.bitplane.runtime.GrammarConstraint.compile(grammar).get();
            byte[] bytes = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            assertTrue(check.allows(bytes), text);
            check.accept(bytes);
            assertEquals("stop".equals(c.choices().get(0).finishReason().asString()), check.complete(), text);
        }
        ChatCompletion chat = client.chat().completions().create(ChatCompletionCreateParams.builder()
                .model("stories260K").addUserMessage("Who is Lily?").maxCompletionTokens(60).temperature(0.0)
                .putAdditionalBodyProperty("json_schema", com.openai.core.JsonValue.from(Map.of("type", "object",
                        "properties", Map.of("name", Map.of("type", "string")), "required", List.of("name"))))
                .build());
        String content = chat.choices().get(0).message().content().orElseThrow();
        assertTrue(content.startsWith("{"), content);
        if ("stop".equals(chat.choices().get(0).finishReason().asString())) {
            assertTrue(new com.fasterxml.jackson.databind.ObjectMapper().readTree(content).path("name").isTextual(),
                    content);
        }
    }

    /**
     * Embeddings through the SDK: one per input, in order, each the runtime's own (mean pooled, unit length);
     * dimensions keeps the first values at unit length again; base64 is the same float32s.
     */
    @Test
    void embeddingsAreTheRuntimesPooledStates() throws Exception {
        List<String> texts = List.of("Once upon a time", "The dog ran to the park.");
        var response = client.embeddings().create(com.openai.models.embeddings.EmbeddingCreateParams.builder()
                .model("stories260K").inputOfArrayOfStrings(texts).build());
        assertEquals(2, response.data().size());
        for (int i = 0; i < 2; i++) {
            float[] want;
            try (io.bitplane.runtime.Session s = model.newSession()) {
                want = s.embed(model.tokenizer().encode(texts.get(i), true, false), io.bitplane.runtime.Pooling.MEAN);
            }
            List<Float> got = response.data().get(i).embedding();
            assertEquals(model.config().dim(), got.size());
            assertEquals(i, response.data().get(i).index());
            for (int j = 0; j < want.length; j++) {
                assertEquals(want[j], got.get(j), 1e-6f);
            }
        }
        assertEquals(texts.stream().mapToInt(t -> model.tokenizer().encode(t, true, false).length).sum(),
                response.usage().promptTokens());
        var short8 = client.embeddings().create(com.openai.models.embeddings.EmbeddingCreateParams.builder()
                .model("stories260K").input("Once upon a time").dimensions(8).build()).data().get(0).embedding();
        assertEquals(8, short8.size());
        assertEquals(1.0, short8.stream().mapToDouble(v -> v * v).sum(), 1e-5);
        java.net.http.HttpResponse<String> raw = java.net.http.HttpClient.newHttpClient().send(
                java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + server.port()
                        + "/v1/embeddings")).header("Authorization", "Bearer " + KEY)
                        .header("Content-Type", "application/json").POST(java.net.http.HttpRequest.BodyPublishers
                                .ofString("{\"input\": \"Once upon a time\", \"encoding_format\": \"base64\"}"))
                        .build(), java.net.http.HttpResponse.BodyHandlers.ofString());
        assertEquals(200, raw.statusCode(), raw.body());
        byte[] bytes = java.util.Base64.getDecoder().decode(new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(raw.body()).path("data").get(0).path("embedding").asText());
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int j = 0; j < model.config().dim(); j++) {
            assertEquals(response.data().get(0).embedding().get(j), b.getFloat(), 0f);
        }
    }

    @Test
    void completionLogprobsAreParallelArrays() {
        Completion c = client.completions().create(CompletionCreateParams.builder().model("stories260K").prompt("")
                .maxTokens(12).temperature(0.0).logprobs(3L).build());
        var l = c.choices().get(0).logprobs().orElseThrow();
        List<String> tokens = l.tokens().orElseThrow();
        assertEquals(12, tokens.size());
        assertEquals(golden.substring(0, c.choices().get(0).text().length()), String.join("", tokens));
        assertEquals(12, l.tokenLogprobs().orElseThrow().size());
        assertEquals(0L, l.textOffset().orElseThrow().get(0));
        assertEquals((long) tokens.get(0).length(), l.textOffset().orElseThrow().get(1));
        var top = l.topLogprobs().orElseThrow().get(0)._additionalProperties();
        assertTrue(top.size() >= 2 && top.size() <= 3, top.toString());
        assertEquals(l.tokenLogprobs().orElseThrow().get(0), top.get(tokens.get(0)).convert(Double.class), 1e-6);
    }

    @Test
    void modelsAreListedAndUnknownOnesRefused() {
        assertTrue(client.models().list().data().stream().anyMatch(m -> m.id().equals("stories260K")));
        assertThrows(NotFoundException.class, () -> client.completions().create(
                CompletionCreateParams.builder().model("gpt-9").prompt("x").maxTokens(3).build()));
    }

    @Test
    void aWrongKeyIsRefused() {
        OpenAIClient wrong = OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + server.port() + "/v1")
                .apiKey("sk-wrong").maxRetries(0).build();
        try {
            assertThrows(UnauthorizedException.class, () -> wrong.completions().create(greedyCompletion(3)));
        } finally {
            wrong.close();
        }
    }
}
