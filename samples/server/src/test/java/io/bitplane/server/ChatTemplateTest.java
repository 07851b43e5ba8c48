package io.bitplane.server;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Chat templates as models carry them (Jinja, Hugging Face variables), rendered by Jinjava. */
class ChatTemplateTest {
    static final List<ChatTemplate.Message> CONVERSATION = List.of(new ChatTemplate.Message("system", "Be brief."),
            new ChatTemplate.Message("user", "Hi"), new ChatTemplate.Message("assistant", "Hello."),
            new ChatTemplate.Message("user", "A story?"));

    /** ChatML, as Qwen and many fine-tunes ship it. */
    static final String CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
            + "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** Llama 2 chat, with its BOS per turn and raise_exception on a wrong role order. */
    static final String LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
            + "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
            + "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
            + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
            + "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
            + "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
            + "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
            + "{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
            + "{{ ' ' + content | trim + ' ' + eos_token }}{% endif %}{% endfor %}";

    @Test
    void theDefaultTemplateWritesPlainTurns() {
        ChatTemplate t = ChatTemplate.forModel(null, "<s>", "</s>", w -> { });
        assertFalse(t.isModelTemplate());
        assertEquals("Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: A story?\nAssistant:", t.render(CONVERSATION));
    }

    @Test
    void chatMlRendersAsHuggingFaceRendersIt() {
        ChatTemplate t = ChatTemplate.forModel(CHATML, "<s>", "</s>", w -> { });
        assertTrue(t.isModelTemplate());
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nA story?<|im_end|>\n"
                + "<|im_start|>assistant\n", t.render(CONVERSATION));
    }

    @Test
    void llama2DropsTheLeadingBosAndRaisesOnABadOrder() {
        ChatTemplate t = ChatTemplate.forModel(LLAMA2, "<s>", "</s>", w -> { });
        assertEquals("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] A story? [/INST]",
                t.render(CONVERSATION));
        var e = assertThrows(IllegalArgumentException.class, () -> t.render(List.of(
                new ChatTemplate.Message("assistant", "x"), new ChatTemplate.Message("user", "y"))));
        assertTrue(e.getMessage().contains("alternate"), e.getMessage());
    }

    @Test
    void aTemplateThatDoesNotRenderIsSetAsideWithOneWarning() {
        List<String> warnings = new ArrayList<>();
        ChatTemplate t = ChatTemplate.forModel("{% for m in messages %}{{ m.content }", "<s>", "</s>", warnings::add);
        assertFalse(t.isModelTemplate());
        assertEquals(1, warnings.size());
    }

    private static String resource(String name) throws Exception {
        try (var in = ChatTemplateTest.class.getResourceAsStream("chat-templates/" + name)) {
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        }
    }

    /**
     * Llama 3.2's own template writes every piece with whitespace control ({@code {{- }}}): rendered without it, the
     * prompt carried the template's newlines and indentation. Today's date comes from strftime_now, as in Hugging
     * Face; the BOS it writes first is dropped (the tokenizer adds it).
     */
    @Test
    void llama32RendersAsHuggingFaceRendersIt() throws Exception {
        ChatTemplate t = ChatTemplate.forModel(resource("meta-llama-Llama-3.2-3B-Instruct.jinja"), "<|begin_of_text|>",
                "<|eot_id|>", w -> { throw new AssertionError(w); });
        assertTrue(t.isModelTemplate());
        String today = java.time.LocalDate.now().format(java.time.format.DateTimeFormatter.ofPattern("dd MMM yyyy",
                java.util.Locale.ENGLISH));
        assertEquals("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                + "Today Date: " + today + "\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
                + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nA story?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(CONVERSATION));
    }

    /**
     * Qwen3's template: namespace() with an expression argument, a reversed slice, Python's string methods. It
     * drops the thinking of answers before the last question, keeps that of the answer after it, and an answer that
     * is only thinking leaves an empty reply (Python's split keeps the empty piece after the last separator).
     */
    @Test
    void qwen3RendersAsHuggingFaceRendersIt() throws Exception {
        ChatTemplate t = ChatTemplate.forModel(resource("Qwen-Qwen3-0.6B.jinja"), "", "<|im_end|>",
                w -> { throw new AssertionError(w); });
        assertTrue(t.isModelTemplate());
        List<ChatTemplate.Message> earlier = List.of(new ChatTemplate.Message("system", "Be brief."),
                new ChatTemplate.Message("user", "Hi"),
                new ChatTemplate.Message("assistant", "<think>\nA greeting.\n</think>\n\nHello."),
                new ChatTemplate.Message("user", "A story?"));
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nA story?<|im_end|>\n"
                + "<|im_start|>assistant\n", t.render(earlier));
        List<ChatTemplate.Message> last = List.of(new ChatTemplate.Message("user", "Hi"),
                new ChatTemplate.Message("assistant", "<think>\n\nA greeting.\n</think>\n\nHello."));
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nA greeting.\n</think>\n\n"
                + "Hello.<|im_end|>\n<|im_start|>assistant\n", t.render(last));
        List<ChatTemplate.Message> onlyThinking = List.of(new ChatTemplate.Message("user", "Hi"),
                new ChatTemplate.Message("assistant", "<think>x</think>"));
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nx\n</think>\n\n"
                + "<|im_end|>\n<|im_start|>assistant\n", t.render(onlyThinking));
    }

    /** One function, as an OpenAI client offers it (keys in this order: the templates write them so). */
    static final String WEATHER_TOOL = "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
            + "\"description\": \"Current weather\", \"parameters\": {\"type\": \"object\", \"properties\": "
            + "{\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}";

    /** A question, the assistant's call, and the function's answer. */
    static final List<ChatTemplate.Message> TOOL_CONVERSATION = List.of(
            new ChatTemplate.Message("system", "Be brief."), new ChatTemplate.Message("user", "Weather in Paris?"),
            new ChatTemplate.Message("assistant", "", List.of(new ToolCall("call_1", "get_weather",
                    "{\"city\":\"Paris\"}")), null, null),
            new ChatTemplate.Message("tool", "sunny, 22 C", List.of(), "call_1", null));

    @SuppressWarnings("unchecked")
    static List<java.util.Map<String, Object>> weatherTools() throws Exception {
        return List.of(new com.fasterxml.jackson.databind.ObjectMapper().readValue(WEATHER_TOOL,
                java.util.LinkedHashMap.class));
    }

    /**
     * Qwen3 with a tool: the tools as Python's json.dumps writes them (", " and ": "), the assistant's call in a
     * tool_call block with its arguments as an object, the answer in a user turn's tool_response.
     */
    @Test
    void qwen3WritesToolsCallsAndAnswersAsHuggingFaceDoes() throws Exception {
        ChatTemplate t = ChatTemplate.forModel(resource("Qwen-Qwen3-0.6B.jinja"), "", "<|im_end|>",
                w -> { throw new AssertionError(w); });
        assertTrue(t.writesTools());
        assertEquals(ToolCallParser.Format.TAGGED, t.toolCallFormat());
        assertEquals("<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist "
                + "with the user query.\n\nYou are provided with function signatures within <tools></tools> XML "
                + "tags:\n<tools>\n" + WEATHER_TOOL + "\n</tools>\n\nFor each function call, return a json object "
                + "with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
                + "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
                + "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
                + "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
                + "<|im_start|>user\n<tool_response>\nsunny, 22 C\n</tool_response><|im_end|>\n"
                + "<|im_start|>assistant\n", t.render(TOOL_CONVERSATION, weatherTools()));
    }

    /**
     * Llama 3.2 with a tool: "Environment: ipython", the tools in the first user turn indented by four (tojson's
     * indent), the call as {"name", "parameters"}, and the answer written with tojson: Jinja counts a string as
     * iterable, so Hugging Face quotes it.
     */
    @Test
    void llama32WritesToolsCallsAndAnswersAsHuggingFaceDoes() throws Exception {
        ChatTemplate t = ChatTemplate.forModel(resource("meta-llama-Llama-3.2-3B-Instruct.jinja"), "<|begin_of_text|>",
                "<|eot_id|>", w -> { throw new AssertionError(w); });
        assertEquals(ToolCallParser.Format.JSON, t.toolCallFormat());
        String today = java.time.LocalDate.now().format(java.time.format.DateTimeFormatter.ofPattern("dd MMM yyyy",
                java.util.Locale.ENGLISH));
        String indented = """
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Current weather",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "city": {
                                    "type": "string"
                                }
                            },
                            "required": [
                                "city"
                            ]
                        }
                    }
                }""";
        assertEquals("<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: "
                + "December 2023\nToday Date: " + today + "\n\nBe brief.<|eot_id|><|start_header_id|>user"
                + "<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function "
                + "call with its proper arguments that best answers the given prompt.\n\nRespond in the format "
                + "{\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use "
                + "variables.\n\n" + indented + "\n\nWeather in Paris?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": "
                + "{\"city\": \"Paris\"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"sunny, 22 C\""
                + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                t.render(TOOL_CONVERSATION, weatherTools()));
    }

    /** A template that writes no tools gets them in the system message, and earlier calls and answers as text. */
    @Test
    void aTemplateWithoutToolsGetsThemInTheSystemMessage() throws Exception {
        ChatTemplate t = ChatTemplate.forModel(CHATML, "<s>", "</s>", w -> { });
        assertFalse(t.writesTools());
        assertEquals("<|im_start|>system\nBe brief.\n\n" + GenericTools.INSTRUCTIONS + "\n\n{\"name\": "
                + "\"get_weather\", \"description\": \"Current weather\", \"parameters\": {\"type\": \"object\", "
                + "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}<|im_end|>\n"
                + "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n{\"name\": \"get_weather\", "
                + "\"arguments\": {\"city\": \"Paris\"}}<|im_end|>\n<|im_start|>user\nResult of call_1: sunny, "
                + "22 C<|im_end|>\n<|im_start|>assistant\n", t.render(TOOL_CONVERSATION, weatherTools()));
        assertEquals(t.render(CONVERSATION), t.render(CONVERSATION, List.of()), "no tools, no change");
    }

    /** Python's json.dumps: its separators, its float repr, text escaped as it escapes it. */
    @Test
    void tojsonWritesWhatPythonsJsonDumpsWrites() {
        java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("z", 1.0);
        m.put("a", List.of(1e-5, 1.5e16, 123456789.0, -0.25, 3L, true));
        m.put("t", "é \"q\" \\ \n\u0001");
        m.put("e", java.util.Map.of());
        m.put("n", null);
        assertEquals("{\"z\": 1.0, \"a\": [1e-05, 1.5e+16, 123456789.0, -0.25, 3, true], \"t\": \"é \\\"q\\\" "
                + "\\\\ \\n\\u0001\", \"e\": {}, \"n\": null}", PythonJson.dumps(m, -1));
        assertEquals("[\n  1,\n  {\n    \"k\": []\n  }\n]", PythonJson.dumps(List.of(1, java.util.Map.of("k",
                List.of())), 2));
    }

    @Test
    void pythonStringMethodsBehaveAsPythons() {
        assertEquals(List.of("<think>x", ""), PythonStringMethods.split("<think>x</think>", new Object[] {"</think>"}));
        assertEquals(List.of("a", "b.c", ""), PythonStringMethods.split("a|b.c|", new Object[] {"|"}));
        assertEquals(List.of("a", "b"), PythonStringMethods.split("  a \n b ", new Object[0]));
        assertEquals("ab", PythonStringMethods.strip("\n\nab\n", new Object[] {"\n"}, true, true));
        assertEquals("ab\n", PythonStringMethods.strip("\n\nab\n", new Object[] {"\n"}, true, false));
        assertEquals("xxab", PythonStringMethods.strip("xxab\t ", new Object[0], false, true));
    }

    @Test
    void namespaceArgumentsAndReversedSlicesAreRewrittenForJinjava() {
        assertEquals("{% set ns = namespace(a=(messages|length - 1), b=( 'x,(y'), c=( f(1, 2))) %}"
                + "{% for m in messages|reverse %}",
                HuggingFaceJinja.adapt("{% set ns = namespace(a=messages|length - 1, b= 'x,(y', c= f(1, 2)) %}"
                        + "{% for m in messages[::-1] %}"));
        assertEquals("namespace(x == 1)", HuggingFaceJinja.adapt("namespace(x == 1)"));
        assertEquals("{%- if not (tools is defined) and not (m['a'].b is not none) %}not x is y{{ not (t is string) }}",
                HuggingFaceJinja.adapt("{%- if not tools is defined and not m['a'].b is not none %}not x is y"
                        + "{{ not t is string }}"));
    }
}
