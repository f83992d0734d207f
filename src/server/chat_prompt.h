// Where chat messages become the prompt text the model continues. The
// handlers take a ChatFormatter: the model's own chat template (src/chat,
// recognised at start-up) or, for base models that carry none, the fixed
// template below.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "chorus/chorus.h"

namespace chorus::server {

struct ChatMessage {
  std::string role;     // system, developer, user, assistant or tool
  std::string content;  // text (parts concatenated; null content is "")
};

// Sets the request's prompt from the messages, with how it is tokenized
// (add_bos, parse_special). Throws Error where the template refuses the
// conversation (the handlers answer 400 with its message).
using ChatFormatter = std::function<void(const std::vector<ChatMessage>& messages, Request& request)>;

// The fixed template for base models such as stories260K, which carry none:
// the contents in order, joined by newlines; roles are not rendered.
std::string join_message_contents(const std::vector<ChatMessage>& messages);
void format_fixed(const std::vector<ChatMessage>& messages, Request& request);

// A formatter rendering `t` (with the vocabulary's BOS/EOS texts) exactly as
// the model's Jinja template would, generation prompt included.
ChatFormatter template_formatter(chat::ChatTemplate t, const RuntimeInfo& info);

}  // namespace chorus::server
