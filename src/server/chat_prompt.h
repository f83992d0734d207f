// Where chat messages become the prompt text the model continues. The
// handlers take a ChatFormatter, so a formatter that renders a model's own
// chat template replaces the fixed one below without touching them.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace chorus::server {

struct ChatMessage {
  std::string role;     // system, developer, user, assistant or tool
  std::string content;  // text (parts concatenated; null content is "")
};

using ChatFormatter = std::function<std::string(const std::vector<ChatMessage>& messages)>;

// The fixed template for base models such as stories260K, which carry none:
// the contents in order, joined by newlines; roles are not rendered.
std::string join_message_contents(const std::vector<ChatMessage>& messages);

}  // namespace chorus::server
