package io.bitplane.server;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.helpers.ChatCompletionAccumulator;
import com.openai.models.FunctionDefinition;
import com.openai.models.FunctionParameters;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionFunctionTool;
import com.openai.models.chat.completions.ChatCompletionMessageFunctionToolCall;
import com.openai.models.chat.completions.ChatCompletionToolChoiceOption;
import com.openai.models.chat.completions.ChatCompletionToolMessageParam;
import io.bitplane.runtime.Model;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Function calling and thinking through the official OpenAI Java SDK, against models that always reply with a call
 * in Qwen3's form (thinking, some text, then a tool_call block) or Llama 3.2's (the reply is the call's JSON), each
 * with its real chat template ({@link ScriptedModel}).
 */
class ToolCallsTest {
    static final String QWEN_THINKING = "<think>\nParis: get_weather.\n</think>\n\n";
    static final String QWEN_REPLY_TEXT = "Let me check.\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
            + "{\"city\": \"Paris\"}}\n</tool_call>";

    @TempDir
    static Path dir;
    static Model qwen;
    static Model llama;
    static Model caller;
    static DecodingServer qwenServer;
    static DecodingServer callerServer;
    static DecodingServer llamaServer;
    static OpenAIClient qwenClient;
    static OpenAIClient llamaClient;

    @BeforeAll
    static void start() throws Exception {
        qwen = Model.open(ScriptedModel.write(dir.resolve("qwen.gguf"), template("Qwen-Qwen3-0.6B.jinja"),
                List.of("<think>", "\nParis: get_weather.\n", "</think>", "\n\n", "Let me check.", "\n\n",
                        "<tool_call>", "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n",
                        "</tool_call>", "<|im_end|>")));
        llama = Model.open(ScriptedModel.write(dir.resolve("llama.gguf"),
                template("meta-llama-Llama-3.2-3B-Instruct.jinja"), List.of("{\"name\": \"get_weather\", ",
                        "\"parameters\": {\"city\": \"Paris\"}}", "<|eot_id|>")));
        caller = Model.open(ScriptedModel.write(dir.resolve("caller.gguf"), template("Qwen-Qwen3-0.6B.jinja"),
                List.of("<tool_call>", "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n",
                        "</tool_call>", "<|im_end|>")));
        qwenServer = DecodingServer.start(qwen, ServerConfig.defaults("qwen").withPort(0));
        callerServer = DecodingServer.start(caller, ServerConfig.defaults("caller").withPort(0));
        llamaServer = DecodingServer.start(llama, ServerConfig.defaults("llama").withPort(0));
        qwenClient = client(qwenServer);
        llamaClient = client(llamaServer);
    }

    @AfterAll
    static void stop() {
        AutoCloseable[] all = {qwenClient::close, llamaClient::close, qwenServer, llamaServer, callerServer, qwen,
            llama, caller};
        for (AutoCloseable c : all) {
            try {
                c.close();
            } catch (Exception ignored) {
                // closing the rest matters more
            }
        }
    }

    private static String template(String name) throws Exception {
        try (var in = ToolCallsTest.class.getResourceAsStream("chat-templates/" + name)) {
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        }
    }

    private static OpenAIClient client(DecodingServer s) {
        return OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + s.port() + "/v1").apiKey("none")
                .maxRetries(0).build();
    }

    static ChatCompletionFunctionTool weatherTool() {
        return ChatCompletionFunctionTool.builder().function(FunctionDefinition.builder().name("get_weather")
                .description("Current weather").parameters(FunctionParameters.builder()
                        .putAdditionalProperty("type", JsonValue.from("object"))
                        .putAdditionalProperty("properties", JsonValue.from(Map.of("city", Map.of("type", "string"))))
                        .putAdditionalProperty("required", JsonValue.from(List.of("city"))).build())
                .build()).build();
    }

    static ChatCompletionCreateParams.Builder question(String model) {
        return ChatCompletionCreateParams.builder().model(model).addUserMessage("Weather in Paris?")
                .addTool(weatherTool()).maxCompletionTokens(32);
    }

    private static ChatCompletionMessageFunctionToolCall onlyCall(ChatCompletion c) {
        var calls = c.choices().get(0).message().toolCalls().orElseThrow();
        assertEquals(1, calls.size(), calls.toString());
        ChatCompletionMessageFunctionToolCall call = calls.get(0).asFunction();
        assertEquals("get_weather", call.function().name());
        assertEquals("{\"city\":\"Paris\"}", call.function().arguments());
        assertTrue(call.id().startsWith("call_"), call.id());
        assertEquals("tool_calls", c.choices().get(0).finishReason().asString());
        return call;
    }

    private static String reasoning(ChatCompletion c) {
        return c.choices().get(0).message()._additionalProperties().get("reasoning_content").asStringOrThrow();
    }

    @Test
    void aQwenReplyGivesItsThinkingTheCallAndTheTextBeforeIt() {
        ChatCompletion c = qwenClient.chat().completions().create(question("qwen").build());
        onlyCall(c);
        assertEquals("Let me check.", c.choices().get(0).message().content().orElseThrow());
        assertEquals("Paris: get_weather.", reasoning(c));
    }

    @Test
    void aStreamedQwenReplyGivesTheSameAndNeverSendsTheCallsMarkup() {
        ChatCompletionAccumulator acc = ChatCompletionAccumulator.create();
        List<String> contents = new ArrayList<>();
        StringBuilder thinking = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> stream = qwenClient.chat().completions()
                .createStreaming(question("qwen").build())) {
            stream.stream().forEach(chunk -> {
                acc.accumulate(chunk);
                chunk.choices().forEach(ch -> {
                    ch.delta().content().ifPresent(contents::add);
                    JsonValue r = ch.delta()._additionalProperties().get("reasoning_content");
                    if (r != null) {
                        thinking.append(r.asStringOrThrow());
                    }
                });
            });
        }
        ChatCompletion c = acc.chatCompletion();
        onlyCall(c);
        assertEquals("Let me check.", c.choices().get(0).message().content().orElseThrow());
        assertFalse(String.join("", contents).contains("<"), contents.toString());
        assertEquals("Paris: get_weather.", thinking.toString());
    }

    /**
     * The call goes back with the function's answer, as a client does next: the server renders both (the prompt it
     * counts is exactly the template's rendering of that conversation) and the model answers again.
     */
    @Test
    void theCallAndItsAnswerGoBackIntoTheConversation() throws Exception {
        ChatCompletion first = qwenClient.chat().completions().create(question("qwen").build());
        ChatCompletionMessageFunctionToolCall call = onlyCall(first);
        ChatCompletion second = qwenClient.chat().completions().create(question("qwen")
                .addMessage(first.choices().get(0).message())
                .addMessage(ChatCompletionToolMessageParam.builder().toolCallId(call.id()).content("sunny, 22 C")
                        .build()).build());
        onlyCall(second);
        ChatTemplate t = ChatTemplate.forModel(qwen.metadata().vocabulary().chatTemplate(), "<|begin_of_text|>",
                "<|im_end|>", w -> { });
        String prompt = t.render(List.of(new ChatTemplate.Message("user", "Weather in Paris?"),
                new ChatTemplate.Message("assistant", "Let me check.", List.of(new ToolCall(call.id(), "get_weather",
                        "{\"city\":\"Paris\"}")), null, null),
                new ChatTemplate.Message("tool", "sunny, 22 C", List.of(), call.id(), null)),
                ChatTemplateTest.weatherTools());
        assertTrue(prompt.contains("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                + "</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nsunny, 22 C\n</tool_response>"), prompt);
        assertEquals(qwen.tokenizer().encode(prompt, true, false).length,
                second.usage().orElseThrow().promptTokens());
    }

    /** With tool_choice "none", or no tool of that name offered, the reply is text as the model wrote it. */
    @Test
    void withoutTheToolTheReplyStaysText() {
        ChatCompletion none = qwenClient.chat().completions().create(question("qwen")
                .toolChoice(ChatCompletionToolChoiceOption.Auto.NONE).build());
        assertEquals(QWEN_REPLY_TEXT, none.choices().get(0).message().content().orElseThrow());
        assertEquals("Paris: get_weather.", reasoning(none));
        assertTrue(none.choices().get(0).message().toolCalls().map(List::isEmpty).orElse(true));
        assertEquals("stop", none.choices().get(0).finishReason().asString());
        ChatCompletion other = qwenClient.chat().completions().create(ChatCompletionCreateParams.builder()
                .model("qwen").addUserMessage("Weather in Paris?").maxCompletionTokens(32)
                .addTool(ChatCompletionFunctionTool.builder().function(FunctionDefinition.builder().name("get_time")
                        .build()).build()).build());
        assertEquals(QWEN_REPLY_TEXT, other.choices().get(0).message().content().orElseThrow());
        assertEquals("stop", other.choices().get(0).finishReason().asString());
    }

    /**
     * chat_template_kwargs reach the template (Qwen3's enable_thinking false writes an empty thinking into the
     * prompt: the prompt counted is the template's rendering with it), and reasoning_format "none" leaves the
     * thinking in the content.
     */
    @Test
    void templateArgumentsAndReasoningFormatAreHonoured() throws Exception {
        ChatCompletion c = qwenClient.chat().completions().create(question("qwen").putAdditionalBodyProperty(
                "chat_template_kwargs", JsonValue.from(Map.of("enable_thinking", false))).build());
        ChatTemplate t = ChatTemplate.forModel(qwen.metadata().vocabulary().chatTemplate(), "<|begin_of_text|>",
                "<|im_end|>", w -> { });
        String prompt = t.render(List.of(new ChatTemplate.Message("user", "Weather in Paris?")),
                ChatTemplateTest.weatherTools(), Map.of("enable_thinking", false));
        assertTrue(prompt.endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n"), prompt);
        assertEquals(qwen.tokenizer().encode(prompt, true, false).length, c.usage().orElseThrow().promptTokens());
        ChatCompletion kept = qwenClient.chat().completions().create(question("qwen").toolChoice(
                ChatCompletionToolChoiceOption.Auto.NONE).putAdditionalBodyProperty("reasoning_format",
                JsonValue.from("none")).build());
        assertEquals(QWEN_THINKING + QWEN_REPLY_TEXT, kept.choices().get(0).message().content().orElseThrow());
        assertFalse(kept.choices().get(0).message()._additionalProperties().containsKey("reasoning_content"));
    }

    /**
     * tool_choice "required" or naming the function: a model that writes the call in its template's form is let
     * through and stops at the block's end; one that would think first (the Qwen model here writes <think>) is made
     * to start the call instead, its thinking refused.
     */
    @Test
    void aRequiredCallIsTheReplyInTheTemplatesForm() {
        try (OpenAiSdkTest.AutoCloseableClient c = new OpenAiSdkTest.AutoCloseableClient(client(callerServer))) {
            for (ChatCompletionToolChoiceOption choice : List.of(ChatCompletionToolChoiceOption.ofAuto(
                    ChatCompletionToolChoiceOption.Auto.REQUIRED), ChatCompletionToolChoiceOption.ofNamedToolChoice(
                    OpenAiSdkTest.named("get_weather")))) {
                ChatCompletion r = c.client().chat().completions().create(question("caller").toolChoice(choice)
                        .build());
                onlyCall(r);
                assertEquals(3, r.usage().orElseThrow().completionTokens(), "the call's end ends the reply");
            }
        }
        for (long seed = 1; seed <= 4; seed++) {
            // the model's first token (<think>) refused, the next is drawn among those that begin the call: the
            // <tool_call> token, after which its script goes on with the call, or a '<' byte, after which it must
            // spell the call out (all else being equally unlikely to it)
            ChatCompletion thinker = qwenClient.chat().completions().create(question("qwen").maxCompletionTokens(8)
                    .seed(seed).toolChoice(ChatCompletionToolChoiceOption.Auto.REQUIRED).build());
            if (thinker.choices().get(0).finishReason().asString().equals("tool_calls")) {
                onlyCall(thinker);
            } else {
                assertTrue(thinker.choices().get(0).message().content().orElseThrow().startsWith("<tool_call>"),
                        thinker.toString());
            }
        }
    }

    @Test
    void aLlamaReplyThatIsACallsJsonIsTheCall() {
        ChatCompletion c = llamaClient.chat().completions().create(question("llama").build());
        onlyCall(c);
        assertTrue(c.choices().get(0).message().content().isEmpty(), c.toString());
        ChatCompletionAccumulator acc = ChatCompletionAccumulator.create();
        try (StreamResponse<ChatCompletionChunk> stream = llamaClient.chat().completions()
                .createStreaming(question("llama").build())) {
            stream.stream().forEach(acc::accumulate);
        }
        onlyCall(acc.chatCompletion());
        assertEquals("", acc.chatCompletion().choices().get(0).message().content().orElse(""));
    }
}
