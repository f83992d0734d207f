// Which family a Jinja chat template belongs to, from markers only that
// family's real template contains (the statement that writes a turn, the
// exception it raises), and the choice between a named template, a template
// file and the model's own. A template that matches no family is an error
// that says what to pass: formatting a chat with the wrong template makes a
// model answer badly without any other sign.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "chat/chat_template.h"
#include "util/error.h"

namespace chorus::chat {
namespace {

struct Named {
  const char* name;
  Family family;
};

constexpr Named kNamed[] = {
    {"chatml", Family::kChatml},
    {"llama2", Family::kLlama2},
    {"llama3", Family::kLlama3},
    {"zephyr", Family::kZephyr},
    {"mistral-v0.1", Family::kMistralV01},
    {"mistral-v0.2", Family::kMistralV02},
    {"mistral-v1", Family::kMistralV1},
    {"mistral-v3", Family::kMistralV3},
    {"mistral-v3-tekken", Family::kMistralV3Tekken},
    {"mistral-v7", Family::kMistralV7},
    {"gemma", Family::kGemma},
    {"phi3", Family::kPhi3},
};

std::string names_list() {
  std::string s;
  for (const Named& n : kNamed) s += (s.empty() ? "" : ", ") + std::string(n.name);
  return s;
}

// Templates spell the same statement with either quote and write a newline
// as "\n" inside a string or as a real one: markers are matched on a copy
// with single quotes and real newlines.
std::string normalise(std::string_view jinja) {
  std::string s;
  s.reserve(jinja.size());
  for (size_t i = 0; i < jinja.size(); ++i) {
    if (jinja[i] == '"') {
      s += '\'';
    } else if (jinja[i] == '\\' && i + 1 < jinja.size() && jinja[i + 1] == 'n') {
      s += '\n';
      ++i;
    } else {
      s += jinja[i];
    }
  }
  return s;
}

bool has(const std::string& text, std::string_view marker) {
  return text.find(marker) != std::string::npos;
}

// The system text a ChatML template adds when the first message is not a
// system one: the first string literal after `from` that is a whole system
// turn, '<|im_start|>system\n...<|im_end|>\n' (SmolLM2 and Qwen2 write it
// under `loop.first and messages[0]['role'] != 'system'`, Qwen2.5 in the
// else branch of `messages[0]['role'] == 'system'`). nullopt: none in that
// simple form.
std::optional<std::string> default_system_turn(const std::string& t, size_t from) {
  const std::string open = "'<|im_start|>system\n";
  const std::string end = "<|im_end|>\n";
  for (size_t start = t.find(open, from); start != std::string::npos;
       start = t.find(open, start + 1)) {
    const size_t text = start + open.size();
    const size_t close = t.find('\'', text);
    if (close == std::string::npos) return std::nullopt;
    if (close - text < end.size() || t.compare(close - end.size(), end.size(), end) != 0) continue;
    std::string system = t.substr(text, close - end.size() - text);
    if (system.find('\\') != std::string::npos) return std::nullopt;  // escapes: not this form
    return system;
  }
  return std::nullopt;
}

std::optional<ChatTemplate> recognise_chatml(const std::string& t) {
  if (!has(t, "<|im_start|>") || has(t, "<|im_sep|>")) return std::nullopt;  // Phi-4: <|im_sep|>
  ChatTemplate c;
  c.family = Family::kChatml;
  if (has(t, "'<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n'") &&
      has(t,
          "(message.role == 'user') or (message.role == 'system' and not loop.first) or "
          "(message.role == 'assistant' and not message.tool_calls)") &&
      has(t,
          "{%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\n' + "
          "messages[0]['content'] + '<|im_end|>\n' }}\n    {%- else %}")) {
    // Qwen2.5's tool-calling form.
    const size_t branch =
        t.find("{%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\n' + ");
    const std::optional<std::string> system = default_system_turn(t, branch);
    if (!system) return std::nullopt;
    c.chatml_tool_form = true;
    c.default_system = *system;
    return c;
  }
  // Other templates mentioning tools format more than the turns below.
  if (has(t, "tool")) return std::nullopt;
  if (!has(t, "'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'")) {
    return std::nullopt;
  }
  const size_t branch = t.find("messages[0]['role'] != 'system'");
  if (branch != std::string::npos) {
    const std::optional<std::string> system = default_system_turn(t, branch);
    if (!system) return std::nullopt;
    c.default_system = *system;
  }
  return c;
}

std::optional<ChatTemplate> recognise_llama3(const std::string& t) {
  // Llama 3.1 and later add a dated system header and tool calling.
  if (!has(t, "<|start_header_id|>") || !has(t, "<|eot_id|>") || has(t, "Cutting Knowledge") ||
      has(t, "tool")) {
    return std::nullopt;
  }
  if (!has(t,
           "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] "
           "| trim + '<|eot_id|>'")) {
    return std::nullopt;
  }
  ChatTemplate c;
  c.family = Family::kLlama3;
  c.always_generation_prompt = !has(t, "add_generation_prompt");
  return c;
}

std::optional<Family> recognise_inst(const std::string& t) {
  if (has(t, "<<SYS>>")) {
    const bool llama2 =
        has(t, "'<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content']") &&
        has(t, "bos_token + '[INST] ' + content.strip() + ' [/INST]'") &&
        has(t, "' '  + content.strip() + ' ' + eos_token");
    return llama2 ? std::optional(Family::kLlama2) : std::nullopt;
  }
  if (has(t, "[SYSTEM_PROMPT]")) {
    return has(t, "'[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]'") &&
                   has(t, "'[INST] ' + message['content'] + '[/INST]'")
               ? std::optional(Family::kMistralV7)
               : std::nullopt;
  }
  if (has(t, "'[INST]' + message['content'] + '[/INST]'")) return Family::kMistralV3Tekken;
  if (has(t, "'[INST] ' + message['content'] + '[/INST]'") &&
      has(t, "message['content']|trim + eos_token")) {
    return Family::kMistralV3;
  }
  if (has(t, "' [INST] ' + message['content'] + ' [/INST]'")) return Family::kMistralV1;
  if (has(t, "'[INST] ' + message['content'] + ' [/INST]'") &&
      has(t, "Only user and assistant roles are supported!")) {
    if (has(t, "message['content'] + eos_token + ' '")) return Family::kMistralV01;
    if (has(t, "message['content'] + eos_token}}") || has(t, "message['content'] + eos_token }}")) {
      return Family::kMistralV02;
    }
  }
  return std::nullopt;
}

std::optional<ChatTemplate> recognise_other(const std::string& t) {
  ChatTemplate c;
  if (has(t, "<start_of_turn>")) {
    // Gemma 1 and 2; Gemma 3 folds a system turn into the first user turn.
    if (!has(t, "System role not supported") ||
        !has(t,
             "'<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n'")) {
      return std::nullopt;
    }
    c.family = Family::kGemma;
    return c;
  }
  if (has(t, "<|user|>") && has(t, "<|end|>")) {
    // Phi-3 and 3.5 (the first Phi-3-mini template dropped system turns and
    // wrote the assistant header after each user turn: not this family).
    if (!has(t, "'<|system|>\n' + message['content'] + '<|end|>\n'") ||
        !has(t, "'<|user|>\n' + message['content'] + '<|end|>\n'") ||
        !has(t, "'<|assistant|>\n' + message['content'] + '<|end|>\n'") ||
        !has(t, "{% else %}{{ eos_token }}")) {
      return std::nullopt;
    }
    c.family = Family::kPhi3;
    c.skip_empty_system = has(t, "message['role'] == 'system' and message['content']");
    return c;
  }
  if (has(t, "<|user|>")) {
    // Zephyr / TinyLlama: each turn ends with eos and a newline (the newline
    // is in the string or right after the expression).
    const bool turns = has(t, "'<|user|>\n' + message['content'] + eos_token }}\n") ||
                       has(t, "'<|user|>\n' + message['content'] + eos_token + '\n' }}");
    const bool prompt = has(t, "'<|assistant|>' }}\n") || has(t, "'<|assistant|>\n' }}");
    if (!turns || !prompt || !has(t, "'<|system|>\n'")) return std::nullopt;
    c.family = Family::kZephyr;
    return c;
  }
  return std::nullopt;
}

// Families whose named template (no text to look at) writes bos_token.
bool writes_bos_by_default(Family f) {
  return f != Family::kChatml && f != Family::kZephyr && f != Family::kPhi3;
}

}  // namespace

std::vector<std::string> template_names() {
  std::vector<std::string> names;
  for (const Named& n : kNamed) names.emplace_back(n.name);
  return names;
}

std::string family_name(Family family) {
  for (const Named& n : kNamed) {
    if (n.family == family) return n.name;
  }
  return "unknown";
}

std::string describe(const ChatTemplate& t) {
  std::string s = family_name(t.family);
  if (t.chatml_tool_form) s += " (tool-calling form)";
  if (!t.default_system.empty()) {
    s += fmt::format(" (default system prompt: \"{}\")", t.default_system);
  }
  if (t.skip_empty_system) s += " (empty system turns left out)";
  if (t.always_generation_prompt) s += " (always opens the assistant turn)";
  return s;
}

ChatTemplate template_by_name(std::string_view name) {
  for (const Named& n : kNamed) {
    if (name == n.name) {
      ChatTemplate c;
      c.family = n.family;
      c.writes_bos = writes_bos_by_default(n.family);
      return c;
    }
  }
  throw Error("--chat-template",
              fmt::format("no template named '{}' (one of: {})", name, names_list()));
}

ChatTemplate recognise_template(std::string_view jinja, const std::string& where) {
  const std::string t = normalise(jinja);
  std::optional<ChatTemplate> found = recognise_chatml(t);
  if (!found) found = recognise_llama3(t);
  if (!found && has(t, "[INST]")) {
    if (const std::optional<Family> f = recognise_inst(t)) {
      found = ChatTemplate{};
      found->family = *f;
    }
  }
  if (!found && !has(t, "[INST]")) found = recognise_other(t);
  if (!found) {
    throw Error(where,
                fmt::format("not a chat template chorus recognises; pass --chat-template NAME "
                            "(one of: {})",
                            names_list()));
  }
  found->writes_bos = has(t, "bos_token");
  return *found;
}

ChatTemplate choose_template(const std::string& choice, std::string_view model_template) {
  if (!choice.empty()) {
    const std::vector<std::string> names = template_names();
    if (std::find(names.begin(), names.end(), choice) != names.end())
      return template_by_name(choice);
    std::ifstream in(choice, std::ios::binary);
    check(static_cast<bool>(in), "--chat-template",
          "'{}' is neither a template name (one of: {}) nor a readable file", choice, names_list());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return recognise_template(text, choice);
  }
  check(!model_template.empty(), "--chat-template",
        "the model has no chat template (tokenizer.chat_template); pass --chat-template NAME "
        "(one of: {})",
        names_list());
  return recognise_template(model_template, "tokenizer.chat_template");
}

}  // namespace chorus::chat
