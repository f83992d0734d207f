// `chorus run`: generate text from a prompt, streaming it as it comes, then
// report timings (prompt and generation speed, peak memory). With --streams,
// --styles or several --suffix, k variants of the prompt are decoded together
// in one pass each step and shown one labelled block per stream. -i reads
// prompts from stdin, one per line, with the model and adapters kept loaded.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <optional>
#include <string>

#include "chorus/chorus.h"
#include "chat/chat_template.h"
#include "decode/generate.h"
#include "decode/sampler.h"
#include "engine/engine.h"
#include "engine/reference_forward.h"
#include "model/model.h"
#include "tools/commands.h"
#include "tools/runtime_flags.h"
#include "tools/engine_options.h"
#include "tools/run_chat.h"
#include "tools/run_view.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus::tools {
namespace {

struct RunArgs {
  std::string model;
  std::string tokenizer;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  int context = 0;
  int threads = 2;
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  int64_t seed = -1;
  bool ignore_eos = false;
  std::vector<std::string> stop;
  bool json = false;
  bool no_bos = false;
  bool reference = false;
  std::string weights = "auto";
  std::string output_head = "auto";
  std::string kv_type = "f16";
  // Streams and adapters.
  int streams = -1;                // -1: not given
  std::vector<std::string> loras;  // NAME=PATH[:SCALE]
  std::string adapter;
  std::vector<std::string> styles;
  std::vector<std::string> suffixes;
  bool interactive = false;
  bool side_by_side = false;
  bool chat = false;          // --chat: a conversation with the chat template
  ChatOptions chat_options;
  Ds2dFlags ds2d;
  bool ds2d_compare = false;  // also decode plainly first and report both speeds
};

// One line on what DS2D did: tokens per tree (tau), acceptance per depth.
void print_speculation(const Result& r) {
  const SpeculationReport& s = r.speculation;
  if (!s.fallback.empty()) {
    std::fprintf(stderr, "[chorus] ds2d=auto: plain decoding, speculation does not fit: %s\n", s.fallback.c_str());
  }
  if (s.trees == 0) return;
  // Which forecast file each stream drafted from, each file once.
  std::string files;
  for (const std::string& f : s.forecasts) {
    const std::string name = f.empty() ? "none (n-grams only)" : f;
    if (files.find(name) == std::string::npos) files += (files.empty() ? "" : ", ") + name;
  }
  std::fprintf(stderr, "[chorus] ds2d forecasts%s: %s\n", s.forecasts_found ? " (found)" : "",
               files.c_str());
  std::string depths;
  for (size_t d = 0; d < s.acceptance.size() && d < 8; ++d) {
    depths += fmt::format("{}{:.2f}", d == 0 ? "" : " ", s.acceptance[d]);
  }
  std::fprintf(stderr,
               "[chorus] ds2d: %lld steps, %.2f tokens accepted per step and stream (tau), %.1f "
               "rows per step, acceptance by depth: %s\n",
               static_cast<long long>(s.steps), s.tau, s.rows_per_step,
               depths.empty() ? "-" : depths.c_str());
}

nlohmann::json speculation_json(const Result& r) {
  const SpeculationReport& s = r.speculation;
  nlohmann::json j = {{"steps", s.steps}, {"trees", s.trees}, {"tau", s.tau},
                      {"rows_per_step", s.rows_per_step}, {"acceptance_by_depth", s.acceptance}};
  if (!s.fallback.empty()) j["fallback"] = s.fallback;
  if (s.trees > 0) {
    j["forecasts"] = s.forecasts;
    j["forecasts_found"] = s.forecasts_found;
  }
  return j;
}

// Generated tokens per second of a result, over all its streams (suffix
// prefill and decode; the shared prompt is the same work with or without
// speculation).
double generation_tokens_per_s(const Result& r) {
  int64_t n = 0;
  for (const StreamResult& s : r.streams) n += static_cast<int64_t>(s.tokens.size());
  const double seconds = r.timings.suffix_seconds + r.timings.decode_seconds;
  return seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
}

bool same_tokens(const Result& a, const Result& b) {
  if (a.streams.size() != b.streams.size()) return false;
  for (size_t i = 0; i < a.streams.size(); ++i) {
    if (a.streams[i].tokens != b.streams[i].tokens) return false;
  }
  return true;
}

// --ds2d-compare: the same request decoded plainly, before the DS2D run.
std::optional<Result> plain_run(Runtime& rt, const RunArgs& a, const Request& req) {
  if (!a.ds2d_compare) return std::nullopt;
  Request plain = req;
  plain.speculate = false;
  return rt.generate(plain);
}

void print_comparison(const std::optional<Result>& plain, const Result& r, bool greedy) {
  if (!plain) return;
  const double with = generation_tokens_per_s(r), without = generation_tokens_per_s(*plain);
  std::fprintf(stderr, "[chorus] ds2d vs plain decoding: %.1f vs %.1f tok/s (%.2fx)%s\n", with, without,
               without > 0 ? with / without : 0.0,
               greedy ? (same_tokens(*plain, r) ? ", identical output" : ", OUTPUT DIFFERS") : "");
}

void add_comparison(nlohmann::json& j, const std::optional<Result>& plain, const Result& r) {
  if (!plain) return;
  const double with = generation_tokens_per_s(r), without = generation_tokens_per_s(*plain);
  j["plain_tokens_per_s"] = without;
  j["ds2d_tokens_per_s"] = with;
  j["speedup"] = without > 0 ? with / without : 0.0;
  j["identical_to_plain"] = same_tokens(*plain, r);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), path, "cannot read prompt file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}


// Everything that fixes the streams of a run, checked before any loading.
struct Plan {
  int k = 1;
  bool multi = false;  // labelled blocks instead of the single-stream output
  std::vector<AdapterFile> adapters;
  std::vector<std::string> styles;    // [k] or empty
  std::vector<std::string> suffixes;  // [k] or empty
  bool ranked = false;                // stream i starts with the i-th likeliest token
};

Plan make_plan(const RunArgs& a) {
  Plan p;
  check(a.threads >= 1 && a.threads <= 256, "-t", "thread count must be 1..256, got {}", a.threads);
  check(a.context >= 0, "-c", "context must be positive, got {}", a.context);
  check(a.n_predict >= -1, "-n", "must be -1 (until the context is full) or >= 0, got {}",
        a.n_predict);
  p.adapters = parse_loras(a.loras);
  std::set<std::string> names;
  for (const AdapterFile& f : p.adapters) names.insert(f.name);
  auto known = [&](const std::string& name, const char* option) {
    check(names.count(name) > 0, option, "no adapter named '{}' is loaded ({})", name,
          names.empty() ? std::string("load one with --lora NAME=PATH")
                        : fmt::format("loaded: {}", fmt::join(names, ", ")));
  };
  if (!a.adapter.empty() && a.adapter != "none") known(a.adapter, "--adapter");
  for (const std::string& s : a.styles) known(s, "--styles");

  const int n_styles = static_cast<int>(a.styles.size());
  const int n_suffixes = static_cast<int>(a.suffixes.size());
  check(a.streams == -1 || (a.streams >= 1 && a.streams <= 64), "--streams",
        "must be 1..64, got {}", a.streams);
  p.k = a.streams > 0 ? a.streams : std::max({n_styles, n_suffixes, 1});
  check(n_styles == 0 || n_styles == p.k, "--styles",
        "{} styles for {} streams (give one per stream)", n_styles, p.k);
  check(n_suffixes <= 1 || n_suffixes == p.k, "--suffix",
        "{} suffixes for {} streams (give one for all, or one per stream)", n_suffixes, p.k);
  p.multi = p.k > 1;
  p.styles = a.styles;
  for (int i = 0; i < (n_suffixes == 0 ? 0 : p.k); ++i)
    p.suffixes.push_back(a.suffixes[n_suffixes == 1 ? 0 : i]);
  p.ranked = a.streams > 1 && a.temperature == 0.0f;
  check(!a.reference || (p.k == 1 && p.adapters.empty() && p.suffixes.empty() && !a.interactive &&
                          !a.chat && a.stop.empty()),
        "--reference",
        "runs one stream on the base model (no --streams, --lora, --suffix, --stop, -i or --chat)");
  check(!a.chat || (p.k == 1 && p.suffixes.empty() && !a.interactive && !a.json), "--chat",
        "is one conversation on one stream (no --streams, --styles, --suffix, -i or --json)");
  check(!a.chat || (a.prompt.empty() && a.prompt_file.empty()), "--chat",
        "reads the user's turns from stdin; give a system prompt with --system");
  check(a.chat || a.chat_options.template_choice.empty(), "--chat-template", "needs --chat");
  check(a.chat || a.chat_options.system.empty(), "--system", "needs --chat");
  return p;
}

// $COLUMNS, else the terminal's width, else 120.
int terminal_width() {
  if (const char* c = std::getenv("COLUMNS"); c != nullptr && std::atoi(c) > 0) return std::atoi(c);
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 120;
}

// One prompt through the runtime, shown the single-stream way (text as it
// comes, then one timing line) or as labelled blocks.
class Runner {
 public:
  Runner(const RunArgs& a, const Plan& plan, Runtime& rt, uint64_t seed)
      : a_(a), plan_(plan), rt_(rt), seed_(seed), info_(rt.info()) {
    adapter_ = a.adapter == "none" ? "" : a.adapter;
  }

  void set_adapter(const std::string& name) {
    if (name != "none") {
      const std::vector<std::string> loaded = rt_.adapters();
      check(std::find(loaded.begin(), loaded.end(), name) != loaded.end(), "/adapter",
            "no adapter named '{}' is loaded (loaded: {})", name,
            loaded.empty() ? std::string("none") : fmt::format("{}", fmt::join(loaded, ", ")));
    }
    adapter_ = name == "none" ? "" : name;
  }
  const std::string& adapter() const { return adapter_; }

  void run(const std::string& prompt_text) {
    Request req = request(prompt_text);
    check_fits(req);
    if (plan_.multi) {
      run_multi(req, prompt_text);
    } else {
      run_single(req, prompt_text);
    }
  }

  // The request for a prompt: the run's sampling, limits and streams.
  Request request(const std::string& prompt_text) const {
    Request req;
    req.prompt = prompt_text;
    req.add_bos = !a_.no_bos;
    req.n_predict = a_.n_predict;
    req.ignore_eos = a_.ignore_eos;
    req.stop = a_.stop;
    req.sampling.temperature = a_.temperature;
    req.sampling.top_k = a_.top_k;
    req.sampling.top_p = a_.top_p;
    req.sampling.min_p = a_.min_p;
    req.sampling.repeat_penalty = a_.repeat_penalty;
    req.sampling.repeat_last_n = a_.repeat_last_n;
    req.sampling.seed = seed_;
    for (int i = 0; i < plan_.k; ++i) {
      StreamOptions s;
      s.adapter = plan_.styles.empty() ? adapter_ : plan_.styles[i];
      if (!plan_.suffixes.empty()) s.suffix = plan_.suffixes[i];
      if (plan_.ranked) s.first_token_rank = i;
      req.streams.push_back(s);
    }
    return req;
  }

 private:
  // The runtime checks all of this too; here the messages name the options.
  void check_fits(const Request& req) const {
    const auto prompt = rt_.tokenize(req.prompt, req.add_bos);
    const int64_t p = static_cast<int64_t>(prompt.size());
    const int64_t ctx = info_.context;
    check(p > 0, "-p", "the prompt is empty and no BOS token is added");
    check(p < ctx, "-p", "the prompt has {} tokens, the context holds {}", p, ctx);
    std::set<std::string> groups;
    int64_t suffixes = 0, longest = 0;
    for (const StreamOptions& s : req.streams) {
      groups.insert(s.adapter);
      const int64_t n =
          s.suffix.empty() ? 0 : static_cast<int64_t>(rt_.tokenize(s.suffix, false).size());
      suffixes += n;
      longest = std::max(longest, n);
    }
    check(p + longest < ctx, "--suffix",
          "the prompt ({} tokens) and a suffix ({} tokens) fill the context of {}", p, longest,
          ctx);
    if (req.n_predict < 0) return;
    const int64_t n = req.n_predict;
    const int64_t k = static_cast<int64_t>(req.streams.size());
    if (k == 1) {
      check(n <= ctx - p - longest, "-n",
            "{} new tokens do not fit: the prompt has {} tokens and the context {} (use -c or a "
            "smaller -n)",
            n, p + longest, ctx);
      return;
    }
    const int64_t needed = p * static_cast<int64_t>(groups.size()) + suffixes + k * n;
    check(p + longest + n <= ctx && needed <= ctx, "-n",
          "{} streams x {} new tokens do not fit: with the prompt ({} tokens, {} adapter "
          "group{}) and suffixes ({} tokens) they need {} cells, the context holds {} (use -c, "
          "fewer streams or a smaller -n)",
          k, n, p, groups.size(), groups.size() == 1 ? "" : "s", suffixes, needed, ctx);
  }

  RunView view(const std::string& prompt_text) const {
    return {a_.model, prompt_text,        info_.kernels,     a_.threads,
            seed_,    info_.load_seconds, info_.pack_seconds};
  }

  void run_single(const Request& req, const std::string& prompt_text) {
    if (!a_.json) {
      std::vector<int32_t> shown = rt_.tokenize(req.prompt, req.add_bos);
      if (!req.streams[0].suffix.empty()) {
        const auto suffix = rt_.tokenize(req.streams[0].suffix, false);
        shown.insert(shown.end(), suffix.begin(), suffix.end());
      }
      std::fputs(rt_.detokenize(shown).c_str(), stdout);
      std::fflush(stdout);
    }
    const std::optional<Result> plain = plain_run(rt_, a_, req);
    const Result r = rt_.generate(req, [&](int, int32_t, std::string_view piece) {
      if (!a_.json && !piece.empty()) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      }
      return true;
    });
    const StreamResult& s = r.streams[0];
    const Timings& t = r.timings;
    const int n_prompt = s.prompt_tokens;
    const double prompt_seconds = t.prompt_seconds;
    const double gen_seconds = t.suffix_seconds + t.decode_seconds;
    const int n_gen = static_cast<int>(s.tokens.size());
    const double prompt_tps = prompt_seconds > 0 ? n_prompt / prompt_seconds : 0;
    const double gen_tps = gen_seconds > 0 ? n_gen / gen_seconds : 0;
    const double ms_per_token = n_gen > 0 ? 1000.0 * gen_seconds / n_gen : 0;
    const double peak_mib = peak_rss_bytes() / 1048576.0;
    if (a_.json) {
      nlohmann::json j;
      j["model"] = a_.model;
      j["prompt"] = prompt_text;
      j["prompt_tokens"] = r.prompt_tokens;
      if (!req.streams[0].adapter.empty()) j["adapter"] = req.streams[0].adapter;
      j["text"] = s.text;
      j["tokens"] = s.tokens;
      j["seed"] = seed_;
      j["backend"] = info_.kernels;
      j["timings"] = {{"load_s", info_.load_seconds}, {"pack_s", info_.pack_seconds},
                      {"prompt_tokens", n_prompt},    {"prompt_tokens_per_s", prompt_tps},
                      {"generated_tokens", n_gen},    {"generated_tokens_per_s", gen_tps},
                      {"ms_per_token", ms_per_token}, {"peak_rss_mib", peak_mib}};
      if (!a_.ds2d.mode.empty()) {
        j["ds2d"] = speculation_json(r);
        add_comparison(j["ds2d"], plain, r);
      }
      std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      std::fflush(stdout);
      return;
    }
    std::printf("\n");
    std::fflush(stdout);
    const std::string adapter =
        req.streams[0].adapter.empty() ? "" : " | adapter " + req.streams[0].adapter;
    std::fprintf(stderr,
                 "\n[chorus] %s, %d threads | load %.0f ms, pack %.0f ms | prompt %d tokens, %.1f "
                 "tok/s | generated %d tokens, %.1f tok/s, %.2f ms/token | peak RSS %.1f MiB | "
                 "seed %llu%s\n",
                 info_.kernels.c_str(), a_.threads, info_.load_seconds * 1000,
                 info_.pack_seconds * 1000, n_prompt, prompt_tps, n_gen, gen_tps, ms_per_token,
                 peak_mib, static_cast<unsigned long long>(seed_), adapter.c_str());
    print_speculation(r);
    print_comparison(plain, r, req.sampling.temperature <= 0.0f);
  }

  void run_multi(const Request& req, const std::string& prompt_text) {
    std::vector<StreamLabel> labels;
    for (size_t i = 0; i < req.streams.size(); ++i) {
      const StreamOptions& s = req.streams[i];
      labels.push_back({s.adapter, s.suffix, s.first_token_rank, seed_ + i});
    }
    const std::optional<Result> plain = plain_run(rt_, a_, req);
    const Result r = rt_.generate(req);
    if (a_.json) {
      nlohmann::json j = streams_json(view(prompt_text), labels, r);
      if (!a_.ds2d.mode.empty()) {
        j["ds2d"] = speculation_json(r);
        add_comparison(j["ds2d"], plain, r);
      }
      std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      std::fflush(stdout);
      return;
    }
    print_streams(view(prompt_text), labels, r, rt_.detokenize(r.prompt_tokens),
                  a_.side_by_side ? terminal_width() : 0);
    print_speculation(r);
    print_comparison(plain, r, req.sampling.temperature <= 0.0f);
  }

  const RunArgs& a_;
  const Plan& plan_;
  Runtime& rt_;
  uint64_t seed_;
  RuntimeInfo info_;
  std::string adapter_;
};

// Prompts from stdin, one per line; /adapter NAME|none switches adapter
// (no reload), /quit ends. An error in one line is reported and skipped.
void run_interactive(Runner& runner, const std::string& prefix) {
  const bool tty = isatty(0);
  std::string line;
  for (;;) {
    if (tty)
      std::fprintf(stderr, "%s> ",
                   runner.adapter().empty() ? "" : ("[" + runner.adapter() + "] ").c_str());
    if (!std::getline(std::cin, line)) break;
    if (line == "/quit" || line == "/exit") break;
    try {
      if (line.rfind("/adapter", 0) == 0) {
        std::string name = line.substr(8);
        name.erase(0, name.find_first_not_of(' '));
        name.erase(name.find_last_not_of(' ') + 1);
        check(!name.empty(), "/adapter", "give a loaded adapter's name, or none");
        runner.set_adapter(name);
        std::fprintf(stderr, "[chorus] adapter: %s\n", name.c_str());
        continue;
      }
      check(line.empty() || line[0] != '/', line, "unknown command (/adapter NAME|none, /quit)");
      if (line.empty() && prefix.empty()) continue;
      runner.run(prefix + line);
    } catch (const Error& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "chorus: error: %s\n", e.what());
    }
  }
}

// The f32 reference pass: one stream, base model, exactly as before the
// runtime existed (the reference is the ground truth the engine is checked against).
int run_reference(RunArgs a, uint64_t seed) {
  const double t_load = now_seconds();
  const auto model = load_model(a.model, a.tokenizer);
  const double load_seconds = now_seconds() - t_load;
  const Tokenizer& tok = *model->tokenizer;
  const int context = a.context > 0 ? a.context : std::min(model->config.context_length, 4096);
  check(context >= 1 && context <= model->config.context_length, "-c",
        "context must be 1..{} (the model's trained context), got {}", model->config.context_length,
        a.context);
  const auto prompt = tok.encode(a.prompt, !a.no_bos);
  check(!prompt.empty(), "-p", "the prompt is empty and no BOS token is added");
  check(static_cast<int>(prompt.size()) < context, "-p",
        "the prompt has {} tokens, the context holds {}", prompt.size(), context);
  const int room = context - static_cast<int>(prompt.size());
  const int n_predict = a.n_predict < 0 ? room : a.n_predict;
  check(n_predict <= room, "-n",
        "{} new tokens do not fit: the prompt has {} tokens and the context {} (use -c or a "
        "smaller -n)",
        n_predict, prompt.size(), context);
  GenerateParams gp;
  gp.n_predict = n_predict;
  gp.ignore_eos = a.ignore_eos;
  gp.sampler.temperature = a.temperature;
  gp.sampler.top_k = a.top_k;
  gp.sampler.top_p = a.top_p;
  gp.sampler.min_p = a.min_p;
  gp.sampler.repeat_penalty = a.repeat_penalty;
  gp.sampler.repeat_last_n = a.repeat_last_n;
  gp.sampler.seed = seed;

  const double t_pack = now_seconds();
  ReferenceForward reference(*model, context, parse_kv_type(a.kv_type, "--kv-type"));
  const double pack_seconds = now_seconds() - t_pack;
  StreamDecoder text(tok);
  std::string all_text;
  std::vector<int32_t> generated;
  if (!a.json) {
    std::fputs(tok.decode(prompt).c_str(), stdout);
    std::fflush(stdout);
  }
  const GenerateStats stats = generate(reference, prompt, gp, [&](int32_t id) {
    generated.push_back(id);
    const std::string piece = text.push(id);
    all_text += piece;
    if (!a.json && !piece.empty()) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  const std::string rest = text.flush();
  all_text += rest;
  const double prompt_tps = stats.prompt_tokens_per_second();
  const double gen_tps = stats.generation_tokens_per_second();
  const double ms_per_token =
      stats.n_generated > 0 ? 1000.0 * stats.generation_seconds / stats.n_generated : 0;
  const double peak_mib = peak_rss_bytes() / 1048576.0;
  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["prompt"] = a.prompt;
    j["prompt_tokens"] = prompt;
    j["text"] = all_text;
    j["tokens"] = generated;
    j["seed"] = seed;
    j["backend"] = "f32 reference";
    j["timings"] = {{"load_s", load_seconds},
                    {"pack_s", pack_seconds},
                    {"prompt_tokens", stats.n_prompt},
                    {"prompt_tokens_per_s", prompt_tps},
                    {"generated_tokens", stats.n_generated},
                    {"generated_tokens_per_s", gen_tps},
                    {"ms_per_token", ms_per_token},
                    {"peak_rss_mib", peak_mib}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::fputs(rest.c_str(), stdout);
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "\n[chorus] f32 reference, 1 threads | load %.0f ms, pack %.0f ms | prompt %d "
               "tokens, %.1f tok/s | generated %d tokens, %.1f tok/s, %.2f ms/token | peak RSS "
               "%.1f MiB | seed %llu\n",
               load_seconds * 1000, pack_seconds * 1000, stats.n_prompt, prompt_tps,
               stats.n_generated, gen_tps, ms_per_token, peak_mib,
               static_cast<unsigned long long>(seed));
  return 0;
}

// Errors of RuntimeOptions name the API's fields; the user typed flags.
Error as_option_error(const Error& e) {
  static const std::pair<const char*, const char*> kFlags[] = {{"context", "-c"},
                                                               {"threads", "-t"},
                                                               {"weights", "--weights"},
                                                               {"output_head", "--output-head"},
                                                               {"kv_type", "--kv-type"},
                                                               {"ds2d budget", "--ds2d-budget"}};
  for (const auto& [field, flag] : kFlags) {
    if (e.where() == field) {
      return Error(flag, std::string(e.what()).substr(e.where().size() + 2));
    }
  }
  return e;
}

int run_generate(RunArgs a) {
  const Plan plan = make_plan(a);
  if (!a.prompt_file.empty()) a.prompt = read_text_file(a.prompt_file);
  const uint64_t seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : std::random_device{}();
  if (a.reference) return run_reference(a, seed);
  parse_weight_format(a.weights, "--weights");
  parse_weight_format(a.output_head, "--output-head");

  RuntimeOptions ro;
  ro.tokenizer = a.tokenizer;
  ro.threads = a.threads;
  ro.context = a.context;
  ro.max_streams = plan.k;
  ro.weights = a.weights;
  ro.output_head = a.output_head;
  ro.kv_type = a.kv_type;
  ro.adapters = plan.adapters;  // slots and max rank follow from the files
  ro.speculation = speculation_options(a.ds2d);
  check(ro.speculation.enabled || !a.ds2d_compare, "--ds2d-compare", "needs --ds2d");
  std::unique_ptr<Runtime> rt;
  try {
    rt = std::make_unique<Runtime>(a.model, ro);
  } catch (const Error& e) {
    throw as_option_error(e);
  }
  Runner runner(a, plan, *rt, seed);
  if (a.chat) {
    run_chat(*rt, runner.request(""), a.chat_options, std::cin);
  } else if (a.interactive) {
    run_interactive(runner, a.prompt);
  } else {
    runner.run(a.prompt);
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt");
  cmd->add_option("-m,--model", args->model, "GGUF or llama2.c model file")->required();
  cmd->add_option("--tokenizer", args->tokenizer,
                  "tokenizer.bin for a llama2.c model (default: beside it)");
  auto* p =
      cmd->add_option("-p,--prompt", args->prompt, "Prompt text (with -i: put before every line)");
  cmd->add_option("-f,--file", args->prompt_file, "Read the prompt from a file")->excludes(p);
  cmd->add_option("-n,--n-predict", args->n_predict,
                  "Tokens to generate per stream (-1: until the context is full)")
      ->capture_default_str();
  cmd->add_option("-c,--ctx-size", args->context, "Context length (default: the model's)");
  cmd->add_option("-t,--threads", args->threads, "Worker threads")->capture_default_str();
  cmd->add_option("--temp", args->temperature, "Temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", args->top_k, "Keep the k most likely tokens (0 = off)")
      ->capture_default_str();
  cmd->add_option("--top-p", args->top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", args->min_p, "Drop tokens below min-p x the top probability (0 = off)")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", args->repeat_penalty, "Penalty for recent tokens (1 = off)")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", args->repeat_last_n,
                  "How many recent tokens the penalty looks at")
      ->capture_default_str();
  cmd->add_option("-s,--seed", args->seed,
                  "Random seed (default: random; printed at the end); stream i uses seed + i");
  cmd->add_flag("--ignore-eos", args->ignore_eos,
                "Keep generating after the end-of-sequence token");
  cmd->add_option("--stop", args->stop,
                  "End a stream right before this text (repeatable); OpenAI's rule, as chorus serve");
  cmd->add_flag("--no-bos", args->no_bos, "Do not add the BOS token to the prompt");
  cmd->add_flag("--reference", args->reference,
                "Use the plain f32 reference forward pass (slow, exact)");
  cmd->add_option("--weights", args->weights, "Layer weights: auto (as stored), int4, int8, f32")
      ->capture_default_str();
  cmd->add_option("--output-head", args->output_head, "Output head: auto, int4, int8, f32")
      ->capture_default_str();
  cmd->add_flag("--json", args->json,
                "Print one JSON object with text, ids and timings (an object per stream) instead "
                "of streaming");
  cmd->add_option("--streams", args->streams,
                  "Decode K variants together over the shared prompt: greedy (--temp 0) starts "
                  "stream i with the i-th most likely token, sampling uses seed + i");
  cmd->add_option("--lora", args->loras, "Load an adapter: NAME=PATH[:SCALE] (repeatable)");
  auto* adapter = cmd->add_option("--adapter", args->adapter,
                                  "Adapter for every stream (a --lora NAME, or none)");
  cmd->add_option("--styles", args->styles, "One stream per adapter: A,B,C (--lora names)")
      ->delimiter(',')
      ->excludes(adapter);
  cmd->add_option("--suffix", args->suffixes,
                  "Prompt text after the shared prompt for one stream (repeat: one per stream; "
                  "once: every stream)");
  add_ds2d_flags(cmd, &args->ds2d);
  add_kv_type_flag(cmd, &args->kv_type);
  cmd->add_flag("--ds2d-compare", args->ds2d_compare,
                "Decode the request plainly first, then with DS2D, and report both speeds (and, when "
                "greedy, whether the outputs are identical)");
  cmd->add_flag("-i,--interactive", args->interactive,
                "Read prompts from stdin, one per line; /adapter NAME|none switches adapter, "
                "/quit ends");
  cmd->add_flag("--chat", args->chat,
                "Chat: read the user's turns from stdin, one per line, and answer each with the "
                "whole conversation formatted by the model's chat template (/reset, /quit)");
  cmd->add_option("--chat-template", args->chat_options.template_choice,
                  fmt::format("With --chat: a template name ({}) or a file holding a Jinja chat "
                              "template, instead of the model's",
                              fmt::join(chat::template_names(), ", ")));
  cmd->add_option("--system", args->chat_options.system, "With --chat: the system prompt");
  cmd->add_flag("--side-by-side", args->side_by_side,
                "Show the streams in columns ($COLUMNS or the terminal's width) instead of blocks");
  cmd->callback([args, selected] { *selected = [args] { return run_generate(*args); }; });
}

}  // namespace chorus::tools
