// libFuzzer target for the chat-template formatter: a template's text and a
// conversation from the input must never crash recognition or formatting;
// every failure is a chorus::Error.
//
// Input: NUL-separated parts: the template text, then role, content, role,
// content, ... The first byte also picks a named template (and bit 7 the
// generation prompt), so every family formats arbitrary conversations even
// when the text is recognised as none.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_template.h"
#include "util/error.h"

using namespace chorus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t end = input.find('\0', start);
    parts.push_back(
        input.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  std::vector<chat::ChatTemplate> templates;
  try {
    templates.push_back(chat::recognise_template(parts[0], "fuzz"));
  } catch (const Error&) {
  }
  const std::vector<std::string> names = chat::template_names();
  const uint8_t selector = size > 0 ? data[0] : 0;
  templates.push_back(chat::template_by_name(names[selector % names.size()]));

  std::vector<chat::Message> messages;
  for (size_t i = 1; i + 1 < parts.size(); i += 2) {
    messages.push_back({std::string(parts[i]), std::string(parts[i + 1])});
  }
  chat::RenderOptions options;
  options.add_generation_prompt = (selector & 0x80) != 0;
  options.bos_token = "<s>";
  options.eos_token = "</s>";
  for (const chat::ChatTemplate& t : templates) {
    (void)chat::describe(t);
    try {
      (void)chat::render(t, messages, options);
    } catch (const Error&) {
    }
  }
  (void)chat::python_strip(input);
  return 0;
}
