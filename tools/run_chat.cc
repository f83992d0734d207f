// `chorus run --chat`: the conversation is kept as messages and rendered
// whole for every turn by src/chat (the same formatting the server uses), so
// the model sees exactly what its Jinja template would give it.
#include "tools/run_chat.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "chat/chat_template.h"
#include "util/error.h"

namespace chorus::tools {
namespace {

// One assistant turn: the rendered conversation through the runtime, the
// answer streamed to stdout. Returns the answer's text.
std::string answer(Runtime& rt, const Request& proto, const chat::ChatTemplate& t,
                   const chat::RenderOptions& ro, const std::vector<chat::Message>& history,
                   int context) {
  chat::ChatPrompt rendered = chat::chat_prompt(t, history, ro);
  Request req = proto;
  req.prompt = std::move(rendered.text);
  req.add_bos = rendered.add_bos;
  req.parse_special = true;
  const int64_t prompt = static_cast<int64_t>(rt.tokenize(req.prompt, req.add_bos, true).size());
  check(prompt < context, "--chat",
        "the conversation has {} tokens, the context holds {} (/reset starts over, -c sets the "
        "context)",
        prompt, context);
  if (req.n_predict >= 0)
    req.n_predict = static_cast<int>(std::min<int64_t>(req.n_predict, context - prompt));
  const Result r = rt.generate(req, [](int, int32_t, std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::printf("\n");
  std::fflush(stdout);
  const StreamResult& s = r.streams[0];
  std::fprintf(stderr, "[chorus] %d prompt tokens, %zu generated, finish %s\n", s.prompt_tokens,
               s.tokens.size(), to_string(s.finish));
  return s.text;
}

}  // namespace

void run_chat(Runtime& rt, const Request& proto, const ChatOptions& options, std::istream& in) {
  const RuntimeInfo info = rt.info();
  const chat::ChatTemplate t = chat::choose_template(options.template_choice, info.chat_template);
  chat::RenderOptions ro;
  ro.bos_token = info.bos_token;
  ro.eos_token = info.eos_token;
  std::vector<chat::Message> start;
  if (!options.system.empty()) start.push_back({"system", options.system});
  {
    // Fail now, not at every turn, when the template refuses how the
    // conversation starts (Gemma has no system role).
    std::vector<chat::Message> probe = start;
    probe.push_back({"user", "?"});
    (void)chat::render(t, probe, ro);
  }
  std::fprintf(stderr, "[chorus] chat template %s; /reset starts over, /quit ends\n",
               chat::describe(t).c_str());
  std::vector<chat::Message> history = start;
  const bool tty = isatty(0);
  std::string line;
  for (;;) {
    if (tty) std::fputs("> ", stderr);
    if (!std::getline(in, line)) break;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      history = start;
      std::fprintf(stderr, "[chorus] conversation cleared\n");
      continue;
    }
    if (line.empty()) continue;
    history.push_back({"user", line});
    try {
      const std::string text = answer(rt, proto, t, ro, history, info.context);
      history.push_back({"assistant", text});
    } catch (const Error& e) {
      history.pop_back();
      std::fflush(stdout);
      std::fprintf(stderr, "chorus: error: %s\n", e.what());
    }
  }
}

}  // namespace chorus::tools
