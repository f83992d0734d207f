// Stop strings as OpenAI applies them, for one stream of generated text:
// the text ends right before the first stop string, wherever the string
// falls across tokens, and text that may still turn out to be the start of
// a stop string is held back, so a streaming client never receives a piece
// it would have to take back. The Runtime runs every stream's text through
// one of these (after UTF-8 reassembly), so `chorus run`, `chorus serve`
// and the C API cut text in the same place.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace chorus {

class StopMatcher {
 public:
  // Empty strings never match and are ignored.
  explicit StopMatcher(std::vector<std::string> stops);

  bool active() const { return !stops_.empty(); }
  // Adds the text of the next token(s); returns the text that can be given
  // out now: everything before a stop string once one is complete, else
  // everything that can no longer become part of one. After a stop string
  // it returns "" for good.
  std::string push(std::string_view text);
  bool stopped() const { return stopped_; }
  // At the end of the stream (no stop string): the text held back.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // generated, not yet given out
  bool stopped_ = false;
};

}  // namespace chorus
