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

}  // namespace chorus::server
