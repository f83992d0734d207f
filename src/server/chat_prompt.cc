// See chat_prompt.h.
#include "server/chat_prompt.h"

namespace chorus::server {

std::string join_message_contents(const std::vector<ChatMessage>& messages) {
  std::string prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i > 0) prompt += "\n";
    prompt += messages[i].content;
  }
  return prompt;
}

void format_fixed(const std::vector<ChatMessage>& messages, Request& request) {
  request.prompt = join_message_contents(messages);
}

ChatFormatter template_formatter(chat::ChatTemplate t, const RuntimeInfo& info) {
  chat::RenderOptions options;
  options.add_generation_prompt = true;
  options.bos_token = info.bos_token;
  options.eos_token = info.eos_token;
  return [t = std::move(t), options](const std::vector<ChatMessage>& messages, Request& request) {
    std::vector<chat::Message> turns;
    turns.reserve(messages.size());
    for (const ChatMessage& m : messages) turns.push_back({m.role, m.content});
    chat::ChatPrompt p = chat::chat_prompt(t, turns, options);
    request.prompt = std::move(p.text);
    request.add_bos = p.add_bos;
    request.parse_special = true;  // the template's special token texts are tokens
  };
}

}  // namespace chorus::server
