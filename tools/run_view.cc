// Printing of multi-stream results for `chorus run`; see run_view.h.
#include "tools/run_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "util/resources.h"

namespace chorus::tools {
namespace {

std::string label_of(int i, const StreamLabel& l, const StreamResult& s) {
  std::string out = fmt::format("stream {}", i);
  if (!l.adapter.empty()) out += " | adapter " + l.adapter;
  if (!l.suffix.empty()) out += fmt::format(" | suffix \"{}\"", l.suffix);
  if (l.first_token_rank >= 0) out += fmt::format(" | first token #{}", l.first_token_rank + 1);
  out += fmt::format(" | {} tokens, {}", s.tokens.size(), to_string(s.finish));
  return out;
}

double per_second(double n, double seconds) { return seconds > 0 ? n / seconds : 0; }

// Characters (code points) of UTF-8 text: the bytes that do not continue one.
size_t width_of(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The byte length of the first `chars` characters of s.
size_t prefix_bytes(std::string_view s, size_t chars) {
  size_t i = 0;
  for (size_t n = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && n++ == chars) break;
  }
  return i;
}

// Greedy word wrap to `width` characters; newlines in the text are kept,
// words longer than a line are cut.
std::vector<std::string> wrap(std::string_view text, size_t width) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t nl = std::min(text.find('\n', start), text.size());
    std::string_view para = text.substr(start, nl - start);
    std::string line;
    while (!para.empty()) {
      const size_t space = para.find(' ', 1);
      std::string_view word = para.substr(0, space);
      para.remove_prefix(word.size());
      if (!line.empty() && width_of(line) + width_of(word) > width) {
        lines.push_back(line);
        line.clear();
        if (word.front() == ' ') word.remove_prefix(1);
      }
      while (width_of(word) > width) {
        const size_t cut = prefix_bytes(word, width - width_of(line));
        line += word.substr(0, cut);
        word.remove_prefix(cut);
        lines.push_back(line);
        line.clear();
      }
      line += word;
    }
    lines.push_back(line);
    start = nl + 1;
  }
  return lines;
}

std::string padded(const std::string& s, size_t width) {
  const size_t w = width_of(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

}  // namespace

void print_streams(const RunView& view, const std::vector<StreamLabel>& labels, const Result& r,
                   const std::string& shown_prompt, int side_by_side) {
  std::printf("%s\n\n", shown_prompt.c_str());
  std::fflush(stdout);
  const bool columns = side_by_side > 0 && print_side_by_side(labels, r, side_by_side);
  for (size_t i = 0; i < (columns ? 0 : r.streams.size()); ++i) {
    const StreamResult& s = r.streams[i];
    std::printf("%s=== %s ===\n%s\n", i > 0 ? "\n" : "",
                label_of(static_cast<int>(i), labels[i], s).c_str(), s.text.c_str());
  }
  std::fflush(stdout);

  const Timings& t = r.timings;
  const double decode = t.suffix_seconds + t.decode_seconds;
  std::fprintf(stderr,
               "\n[chorus] %s, %d threads | load %.0f ms, pack %.0f ms | prompt %d tokens x %d "
               "prefill%s, %.1f ms | %zu streams: %d tokens in %.1f ms, %.1f tok/s total | "
               "total %.1f ms | KV %.1f KiB | peak RSS %.1f MiB | seed %llu\n",
               view.backend.c_str(), view.threads, view.load_seconds * 1000,
               view.pack_seconds * 1000, t.prompt_tokens, t.prompt_prefills,
               t.prompt_prefills == 1 ? "" : "s", t.prompt_seconds * 1000, r.streams.size(),
               t.generated_tokens, decode * 1000, per_second(t.generated_tokens, decode),
               t.total_seconds * 1000, t.kv_bytes_used / 1024.0, peak_rss_bytes() / 1048576.0,
               static_cast<unsigned long long>(view.seed));
  for (size_t i = 0; i < r.streams.size(); ++i) {
    const StreamResult& s = r.streams[i];
    std::fprintf(stderr,
                 "[chorus] stream %zu: %zu tokens (%s) | first token at %.1f ms, last at %.1f ms "
                 "| %.1f tok/s\n",
                 i, s.tokens.size(), to_string(s.finish), s.first_token_seconds * 1000,
                 s.last_token_seconds * 1000,
                 per_second(static_cast<double>(s.tokens.size()), s.last_token_seconds));
  }
}

bool print_side_by_side(const std::vector<StreamLabel>& labels, const Result& r, int width) {
  const size_t k = r.streams.size();
  if (k == 0) return false;
  const int col = (width - 3 * static_cast<int>(k - 1)) / static_cast<int>(k);
  if (col < 16) return false;
  std::vector<std::vector<std::string>> cols(k);
  size_t rows = 0;
  for (size_t i = 0; i < k; ++i) {
    std::string head = fmt::format("[{}]", i);
    if (!labels[i].adapter.empty()) head += " " + labels[i].adapter;
    if (!labels[i].suffix.empty()) head += " \"" + labels[i].suffix + "\"";
    cols[i] = wrap(head, col);
    cols[i].push_back(std::string(col, '-'));
    for (std::string& line : wrap(r.streams[i].text, col)) cols[i].push_back(std::move(line));
    rows = std::max(rows, cols[i].size());
  }
  for (size_t row = 0; row < rows; ++row) {
    std::string line;
    for (size_t i = 0; i < k; ++i) {
      const std::string cell = row < cols[i].size() ? cols[i][row] : "";
      line += i + 1 < k ? padded(cell, col) + " | " : cell;
    }
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
  return true;
}

nlohmann::json streams_json(const RunView& view, const std::vector<StreamLabel>& labels,
                            const Result& r) {
  nlohmann::json j;
  j["model"] = view.model;
  j["prompt"] = view.prompt;
  j["prompt_tokens"] = r.prompt_tokens;
  j["seed"] = view.seed;
  j["backend"] = view.backend;
  nlohmann::json streams = nlohmann::json::array();
  for (size_t i = 0; i < r.streams.size(); ++i) {
    const StreamResult& s = r.streams[i];
    const StreamLabel& l = labels[i];
    nlohmann::json o;
    o["stream"] = i;
    o["adapter"] = l.adapter.empty() ? nlohmann::json(nullptr) : nlohmann::json(l.adapter);
    o["suffix"] = l.suffix;
    o["first_token_rank"] = l.first_token_rank;
    o["seed"] = l.seed;
    o["text"] = s.text;
    o["tokens"] = s.tokens;
    o["stop_reason"] = to_string(s.finish);
    o["timings"] = {
        {"prompt_tokens", s.prompt_tokens},
        {"generated_tokens", s.tokens.size()},
        {"first_token_ms", s.first_token_seconds * 1000},
        {"last_token_ms", s.last_token_seconds * 1000},
        {"tokens_per_s", per_second(static_cast<double>(s.tokens.size()), s.last_token_seconds)}};
    streams.push_back(std::move(o));
  }
  j["streams"] = std::move(streams);
  const Timings& t = r.timings;
  const double decode = t.suffix_seconds + t.decode_seconds;
  j["timings"] = {{"load_s", view.load_seconds},
                  {"pack_s", view.pack_seconds},
                  {"prompt_tokens", t.prompt_tokens},
                  {"prompt_prefills", t.prompt_prefills},
                  {"prefill_rows", t.prefill_rows},
                  {"prompt_s", t.prompt_seconds},
                  {"suffix_s", t.suffix_seconds},
                  {"decode_s", t.decode_seconds},
                  {"total_s", t.total_seconds},
                  {"generated_tokens", t.generated_tokens},
                  {"generated_tokens_per_s", per_second(t.generated_tokens, decode)},
                  {"kv_bytes_used", t.kv_bytes_used},
                  {"peak_rss_mib", peak_rss_bytes() / 1048576.0}};
  return j;
}

}  // namespace chorus::tools
