// The formatter of each template family: what its real Jinja template writes
// for a conversation, statement by statement, including where it raises.
// Each function mirrors one template in tests/data/chat_templates/.
#include <string>

#include "chat/chat_template.h"
#include "util/error.h"

namespace chorus::chat {
namespace {

using Messages = std::span<const Message>;

// The templates' own exception messages.
constexpr const char* kAlternate =
    "Conversation roles must alternate user/assistant/user/assistant/...";
constexpr const char* kAlternateAfterSystem =
    "After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...";
constexpr const char* kOnlyUserAssistant = "Only user and assistant roles are supported!";
constexpr const char* kOnlyUserAssistantSystem =
    "Only user and assistant roles are supported, with the exception of an initial optional "
    "system message!";

[[noreturn]] void raise(const ChatTemplate& t, const std::string& message) {
  throw Error("chat template " + family_name(t.family), message);
}

// `(message['role'] == 'user') != (loop.index0 % 2 == 0)`: users at even
// places. Other roles pass at odd places, as in the templates.
bool breaks_alternation(const Message& m, size_t i) { return (m.role == "user") != (i % 2 == 0); }

std::string bos(const ChatTemplate& t, const RenderOptions& o) {
  return t.writes_bos ? o.bos_token : "";
}

// Templates of the form `if messages[0]['role'] == 'system'`: the leading
// system message and the rest.
bool leading_system(Messages m) { return m[0].role == "system"; }

// Qwen2.5: the system turn first, then user and assistant turns and later
// system turns; other roles are left out.
std::string chatml_tool_form(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  std::string out = bos(t, o);
  const bool has_system = leading_system(msgs);
  out +=
      "<|im_start|>system\n" + (has_system ? msgs[0].content : t.default_system) + "<|im_end|>\n";
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Message& m = msgs[i];
    if (m.role == "tool") raise(t, "tool messages are not supported by chorus");
    if (m.role == "user" || (m.role == "system" && i > 0) || m.role == "assistant") {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    }
  }
  if (o.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string chatml(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  if (t.chatml_tool_form) return chatml_tool_form(t, msgs, o);
  std::string out = bos(t, o);
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (i == 0 && !t.default_system.empty() && msgs[0].role != "system") {
      out += "<|im_start|>system\n" + t.default_system + "<|im_end|>\n";
    }
    out += "<|im_start|>" + msgs[i].role + "\n" + msgs[i].content + "<|im_end|>\n";
  }
  if (o.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string llama2(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  // `system_message != false` holds for an empty system text too.
  const bool has_system = leading_system(msgs);
  const Messages loop = has_system ? msgs.subspan(1) : msgs;
  std::string out;
  for (size_t i = 0; i < loop.size(); ++i) {
    const Message& m = loop[i];
    if (breaks_alternation(m, i)) raise(t, kAlternate);
    const std::string content = i == 0 && has_system
                                    ? "<<SYS>>\n" + msgs[0].content + "\n<</SYS>>\n\n" + m.content
                                    : m.content;
    if (m.role == "user") {
      out += bos(t, o) + "[INST] " + python_strip(content) + " [/INST]";
    } else if (m.role == "assistant") {
      out += ' ' + python_strip(content) + ' ' + o.eos_token;
    }
  }
  return out;
}

std::string llama3(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  std::string out;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (i == 0) out += bos(t, o);
    out += "<|start_header_id|>" + msgs[i].role + "<|end_header_id|>\n\n" +
           python_strip(msgs[i].content) + "<|eot_id|>";
  }
  if (o.add_generation_prompt || t.always_generation_prompt) {
    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  }
  return out;
}

std::string zephyr(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  std::string out = bos(t, o);
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Message& m = msgs[i];
    if (m.role == "user" || m.role == "system" || m.role == "assistant") {
      out += "<|" + m.role + "|>\n" + m.content + o.eos_token + "\n";
    }
    if (i + 1 == msgs.size() && o.add_generation_prompt) out += "<|assistant|>\n";
  }
  return out;
}

// Mistral-7B-Instruct v0.1 and v0.2: no system role at all.
std::string mistral_v0(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  std::string out = bos(t, o);
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Message& m = msgs[i];
    if (breaks_alternation(m, i)) raise(t, kAlternate);
    if (m.role == "user") {
      out += "[INST] " + m.content + " [/INST]";
    } else if (m.role == "assistant") {
      out += m.content + o.eos_token + (t.family == Family::kMistralV01 ? " " : "");
    } else {
      raise(t, kOnlyUserAssistant);
    }
  }
  return out;
}

// v1: the system text opens the first user turn.
std::string mistral_v1(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  const bool has_system = leading_system(msgs);
  const Messages loop = has_system ? msgs.subspan(1) : msgs;
  std::string out = bos(t, o);
  for (size_t i = 0; i < loop.size(); ++i) {
    const Message& m = loop[i];
    if (breaks_alternation(m, i)) raise(t, kAlternateAfterSystem);
    if (m.role == "user") {
      out += i == 0 && has_system ? " [INST] " + msgs[0].content + "\n\n" + m.content + " [/INST]"
                                  : " [INST] " + m.content + " [/INST]";
    } else if (m.role == "assistant") {
      out += " " + m.content + o.eos_token;
    } else {
      raise(t, kOnlyUserAssistantSystem);
    }
  }
  return out;
}

// v3 and v3-tekken: alternation is checked over the whole conversation
// first; the system text goes into the user turn only when that turn is the
// last message (otherwise the template drops it).
std::string mistral_v3(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  const bool tekken = t.family == Family::kMistralV3Tekken;
  const bool has_system = leading_system(msgs);
  const Messages loop = has_system ? msgs.subspan(1) : msgs;
  for (size_t i = 0; i < loop.size(); ++i) {
    if (loop[i].role == "tool" || loop[i].role == "tool_results") {
      raise(t, "tool messages are not supported by chorus");
    }
    if (breaks_alternation(loop[i], i)) raise(t, kAlternateAfterSystem);
  }
  const std::string open = tekken ? "[INST]" : "[INST] ";
  std::string out = bos(t, o);
  for (size_t i = 0; i < loop.size(); ++i) {
    const Message& m = loop[i];
    if (m.role == "user") {
      out += i + 1 == loop.size() && has_system
                 ? open + msgs[0].content + "\n\n" + m.content + "[/INST]"
                 : open + m.content + "[/INST]";
    } else if (m.role == "assistant") {
      out += tekken ? m.content + o.eos_token : ' ' + python_strip(m.content) + o.eos_token;
    } else {
      raise(t, kOnlyUserAssistantSystem);
    }
  }
  return out;
}

std::string mistral_v7(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  std::string out = bos(t, o);
  for (const Message& m : msgs) {
    if (m.role == "user") {
      out += "[INST] " + m.content + "[/INST]";
    } else if (m.role == "system") {
      out += "[SYSTEM_PROMPT] " + m.content + "[/SYSTEM_PROMPT]";
    } else if (m.role == "assistant") {
      out += " " + m.content + o.eos_token;
    } else {
      raise(t, "Only user, system and assistant roles are supported!");
    }
  }
  return out;
}

std::string gemma(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  std::string out = bos(t, o);
  if (msgs[0].role == "system") raise(t, "System role not supported");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Message& m = msgs[i];
    if (breaks_alternation(m, i)) raise(t, kAlternate);
    const std::string role = m.role == "assistant" ? "model" : m.role;
    out += "<start_of_turn>" + role + "\n" + python_strip(m.content) + "<end_of_turn>\n";
  }
  if (o.add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

std::string phi3(const ChatTemplate& t, Messages msgs, const RenderOptions& o) {
  std::string out = bos(t, o);
  for (const Message& m : msgs) {
    const bool shown = m.role == "user" || m.role == "assistant" ||
                       (m.role == "system" && !(t.skip_empty_system && m.content.empty()));
    if (shown) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
  }
  out += o.add_generation_prompt ? "<|assistant|>\n" : o.eos_token;
  return out;
}

}  // namespace

std::string render(const ChatTemplate& t, std::span<const Message> messages,
                   const RenderOptions& options) {
  // Every family's template indexes messages[0] or renders only a
  // generation prompt for nothing; neither is a useful prompt.
  if (messages.empty()) raise(t, "the conversation has no messages");
  switch (t.family) {
    case Family::kChatml:
      return chatml(t, messages, options);
    case Family::kLlama2:
      return llama2(t, messages, options);
    case Family::kLlama3:
      return llama3(t, messages, options);
    case Family::kZephyr:
      return zephyr(t, messages, options);
    case Family::kMistralV01:
    case Family::kMistralV02:
      return mistral_v0(t, messages, options);
    case Family::kMistralV1:
      return mistral_v1(t, messages, options);
    case Family::kMistralV3:
    case Family::kMistralV3Tekken:
      return mistral_v3(t, messages, options);
    case Family::kMistralV7:
      return mistral_v7(t, messages, options);
    case Family::kGemma:
      return gemma(t, messages, options);
    case Family::kPhi3:
      return phi3(t, messages, options);
  }
  raise(t, "unknown template family");
}

ChatPrompt chat_prompt(const ChatTemplate& t, std::span<const Message> messages,
                       const RenderOptions& options) {
  ChatPrompt p;
  p.text = render(t, messages, options);
  p.add_bos = options.bos_token.empty() || !p.text.starts_with(options.bos_token);
  return p;
}

}  // namespace chorus::chat
