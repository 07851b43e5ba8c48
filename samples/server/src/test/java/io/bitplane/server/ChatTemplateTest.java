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
}
