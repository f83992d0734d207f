// Chat templates: a conversation (role, content messages) -> the prompt text
// a model's Jinja chat template (GGUF `tokenizer.chat_template`, Hugging Face
// `chat_template`) renders for it, byte for byte.
//
// There is no Jinja interpreter here. A template's text is recognised as one
// of the known families by markers only that family's template contains, and
// the family is formatted in C++, with the quirks of its real template: Llama
// 2 folds the system prompt into the first user turn (<<SYS>>), Gemma renames
// assistant to model and refuses a system turn, Mistral's [INST] spacing and
// system placement differ per version, strict user/assistant alternation
// fails with the template's own message. tests/data/chat_templates holds the
// real templates and what Python's jinja2 renders from them; the tests
// compare every byte.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::chat {

struct Message {
  std::string
      role;  // "system", "user", "assistant" (others pass through where the template allows)
  std::string content;
};

// What a template sees besides the messages.
struct RenderOptions {
  bool add_generation_prompt = true;  // open the assistant's turn at the end
  std::string bos_token;              // the vocabulary's BOS / EOS texts, e.g. "<s>", "</s>"
  std::string eos_token;
};

enum class Family {
  kChatml,           // <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen2, Qwen2.5, OpenHermes)
  kLlama2,           // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>
  kLlama3,           // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  kZephyr,           // <|user|>\n...</s>\n (Zephyr, TinyLlama-Chat)
  kMistralV01,       // [INST] ... [/INST]...</s> + " ", no system (Mistral-7B-Instruct-v0.1)
  kMistralV02,       // the same without the space (v0.2, Mixtral-8x7B-Instruct)
  kMistralV1,        // " [INST] system\n\nuser [/INST]" (system in the first turn)
  kMistralV3,        // "[INST] ...[/INST]", system in the last user turn (Mistral-Large-2407)
  kMistralV3Tekken,  // "[INST]...[/INST]" without spaces (Mistral-Nemo)
  kMistralV7,        // [SYSTEM_PROMPT] ...[/SYSTEM_PROMPT][INST] ...[/INST] (Mistral-Large-2411)
  kGemma,            // <start_of_turn>user|model\n...<end_of_turn>\n, no system role
  kPhi3,             // <|user|>\n...<|end|>\n, eos when no generation prompt
};

// A recognised template: its family and what its text fixes beyond the
// family's shape.
struct ChatTemplate {
  Family family = Family::kChatml;
  // The template writes bos_token where its family puts it (Gemma 2 and
  // Mistral at the start, Llama 2 before each [INST], Llama 3 before the
  // first header). A template that never names bos_token writes none.
  bool writes_bos = true;
  // ChatML templates that add a system turn when the conversation starts
  // without one (SmolLM2, Qwen2): its text; empty: none.
  std::string default_system;
  // The tool-calling ChatML form (Qwen2.5): the system turn (the first
  // message's or the default) comes first, roles other than system, user and
  // assistant are left out; tool messages are not supported.
  bool chatml_tool_form = false;
  bool skip_empty_system = false;  // Phi-3.5: a system turn with no content is left out
  bool always_generation_prompt =
      false;  // the first Llama 3 template ignores add_generation_prompt
};

// The names --chat-template accepts, in a fixed order.
std::vector<std::string> template_names();
// The name of a family ("chatml", "llama2", "mistral-v3-tekken", ...).
std::string family_name(Family family);
// "llama3", "chatml (default system prompt: \"You are ...\")".
std::string describe(const ChatTemplate& t);

// The template of a name (template_names()). Throws Error naming the
// choices when the name is not one of them.
ChatTemplate template_by_name(std::string_view name);

// Recognises a Jinja template's text. Throws Error saying to pass
// `--chat-template NAME` (listing the names) when it is no known family.
// `where` names the text's origin in the message ("tokenizer.chat_template", a path).
ChatTemplate recognise_template(std::string_view jinja, const std::string& where);

// The template a chat uses: `choice` when given (a name, or a file holding a
// Jinja template, recognised the same way), else the model's own template
// text. Throws Error when neither gives a known template, saying what to pass.
ChatTemplate choose_template(const std::string& choice, std::string_view model_template);

// The prompt the template renders for `messages`. Throws Error where the
// real template raises an exception (its message included), and for an
// empty conversation.
std::string render(const ChatTemplate& t, std::span<const Message> messages,
                   const RenderOptions& options);

// A rendered conversation as the tokenizer should take it: `text` with
// special token texts parsed as tokens (Request::parse_special), and BOS
// added as the vocabulary asks only when the template did not write it
// already (`add_bos` false when text starts with bos_token), so a prompt
// never starts with two BOS tokens.
struct ChatPrompt {
  std::string text;
  bool add_bos = true;
};
ChatPrompt chat_prompt(const ChatTemplate& t, std::span<const Message> messages,
                       const RenderOptions& options);

// Python's str.strip() (Jinja's `trim` filter): removes leading and trailing
// Unicode whitespace (Python's str.isspace set) from UTF-8 text; bytes that
// are not valid UTF-8 count as non-space.
std::string python_strip(std::string_view text);

}  // namespace chorus::chat
