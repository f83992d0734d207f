// `chorus run --chat`: an interactive conversation formatted with the
// model's chat template (or --chat-template), one user turn per stdin line.
#pragma once

#include <istream>
#include <string>

#include "chorus/chorus.h"

namespace chorus::tools {

struct ChatOptions {
  std::string template_choice;  // --chat-template NAME|FILE; empty: the model's own
  std::string system;           // --system: the conversation's system prompt, if any
};

// Reads user turns from `in` until EOF or /quit (/reset forgets the
// conversation); each answer is generated from the whole conversation as the
// template renders it, streamed to stdout and kept in the history. `proto`
// gives sampling, the token limit and the stream's adapter; its prompt is
// replaced. Throws Error before reading anything when no template fits (or
// it refuses the system prompt); an error in one turn is reported and that
// turn dropped.
void run_chat(Runtime& rt, const Request& proto, const ChatOptions& options, std::istream& in);

}  // namespace chorus::tools
