// chorus: the public C++ API.
//
// One Runtime holds one frozen model, packed for the CPU, plus a fixed pool
// of LoRA adapter slots. generate() runs a request: a prompt and k streams
// (variants) decoded together in one forward pass per token over a KV cache
// in which the prompt is stored once per adapter. Streams differ by adapter
// (style), by a text suffix after the shared prompt, by seed, or by starting
// from the i-th most likely first token (smart reply).
//
//   chorus::RuntimeOptions opt;
//   opt.adapters = {{"formal", "formal.gguf"}, {"jovial", "jovial.gguf"}};
//   chorus::Runtime rt("model.gguf", opt);
//   chorus::Request req;
//   req.prompt = "Reply to: are you coming tonight?";
//   req.streams.resize(2);
//   req.streams[0].adapter = "formal";
//   req.streams[1].adapter = "jovial";
//   chorus::Result r = rt.generate(req, [](int stream, int32_t, std::string_view piece) {
//     return true;  // false stops that stream
//   });
//   for (const auto& s : r.streams) std::cout << s.adapter << ": " << s.text << "\n";
//
// Errors (bad files, options or requests) are thrown as chorus::Error
// (chorus/error.h, a std::runtime_error) with a one-line message naming what
// is at fault; a request is checked completely before any work, so a failed
// generate() changes nothing. A Runtime is not thread-safe: one call at a
// time. The C API over this one is chorus/chorus_c.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chorus/error.h"

namespace chorus {

// A LoRA adapter file to load: a PEFT directory (or its
// adapter_model.safetensors) or a llama.cpp GGUF adapter.
struct AdapterFile {
  std::string name;  // how requests refer to it
  std::string path;
  float scale = 1.0f;  // user scale; the effective one is scale x alpha / rank
};

// DS2D, self-speculative decoding: the model drafts a token tree from
// forecast embeddings and verifies it in the next pass. Output is identical
// to plain decoding; only speed changes.
struct SpeculationOptions {
  bool enabled = false;
  // Forecast GGUF files (chorus forecast derive, train/forecast_train.py).
  // A file trained with an adapter serves streams of that adapter; one
  // without serves the others. Streams with no file get n-gram drafts only.
  std::vector<std::string> forecasts;
  // With no `forecasts` named: use the forecast files found beside the
  // model file and beside each adapter file of RuntimeOptions::adapters
  // (models/README.md gives the names; a file found beside an adapter
  // serves that adapter's streams). false: none, n-gram drafts only.
  bool find_forecasts = true;
  int budget = 32;     // rows per stream and step (tree nodes + forecast rows)
  bool ngram = true;   // also draft continuations of repeated n-grams
  // Cost of one more row relative to a 1-row step; -1 measures it at the
  // first request. The tree grows only while that pays; 0 always fills the budget.
  float row_cost = -1.0f;
  // "auto": when the forecasts or the budget do not fit this model and
  // engine, decode plainly instead of failing; SpeculationReport::fallback
  // says why. Otherwise such a mismatch is an Error from the constructor.
  bool fallback_to_plain = false;
};

struct RuntimeOptions {
  std::string tokenizer;             // tokenizer.bin of a llama2.c model (default: beside it)
  int threads = 2;                   // including the calling thread
  int context = 0;                   // KV cells shared by all streams; 0: min(model context, 4096)
  int max_streams = 8;               // streams per request, at most 64
  int max_rows = 64;                 // rows per forward step (prefill is chunked to it)
  std::string weights = "auto";      // layer weights: auto (as stored), int4, int8, f32
  std::string output_head = "auto";  // the same for the output head
  // KV cache: "f16" (half the bytes, each value rounded once when stored)
  // or "f32".
  std::string kv_type = "f16";
  // Adapter slots, fixed for the Runtime's life: at least adapters.size()
  // slots, of at least the largest rank among `adapters`.
  int adapter_slots = 0;
  int adapter_max_rank = 0;
  std::vector<AdapterFile> adapters;  // loaded when the Runtime opens
  SpeculationOptions speculation;
};

struct Sampling {
  float temperature = 0.8f;     // 0 = greedy
  int top_k = 40;               // 0 = off
  float top_p = 0.95f;          // 1 = off
  float min_p = 0.05f;          // 0 = off
  float repeat_penalty = 1.0f;  // 1 = off
  int repeat_last_n = 64;       // 0 = off, -1 = whole history
  uint64_t seed = 0;            // stream i uses seed + i unless it sets its own
};

struct StreamOptions {
  std::string adapter;  // a loaded adapter's name; empty: the base model
  // Text after the shared prompt for this stream only (e.g. a style
  // instruction), tokenized on its own without BOS.
  std::string suffix;
  std::optional<uint64_t> seed;  // default: Request::sampling.seed + stream index
  // >= 0: the stream starts with the first_token_rank-th most likely token
  // (0 = the greedy one), smart-reply style; later tokens are sampled.
  int first_token_rank = -1;
  // The adapter's user scale for this request instead of the one it was
  // loaded with (no reload; restored afterwards). Streams of one request on
  // the same adapter must agree on it.
  std::optional<float> adapter_scale;
};

struct Request {
  std::string prompt;   // the shared prefix
  bool add_bos = true;  // prepend BOS as the vocabulary asks
  // Special token texts in the prompt ("<|im_start|>", "<s>") become those
  // tokens, as a chat template's output needs; otherwise they are spelled
  // out as plain text.
  bool parse_special = false;
  int n_predict = 128;  // new tokens per stream; -1: as many as the context holds
  bool ignore_eos = false;
  // A stream stops when its text contains one; its text ends right before
  // it (OpenAI's rule), also when the string spans tokens. Text that may
  // still become a stop string reaches the callback only once it cannot.
  std::vector<std::string> stop;
  Sampling sampling;
  std::vector<StreamOptions> streams;  // empty: one stream on the base model
  // With speculation enabled in the runtime: false decodes this request
  // plainly (for comparisons, or requests that should not pay for drafts).
  bool speculate = true;
  // >= 0: StreamResult::logprobs reports each generated token's
  // log-probability under the model's distribution and this many most
  // likely alternatives (0..20); -1: off.
  int logprobs = -1;
};

enum class FinishReason { kLength, kEndOfGeneration, kStopString, kCallback };
// "length", "eog", "stop", "callback".
const char* to_string(FinishReason r);

// A token and its log-probability: the log-softmax of the raw logits it was
// chosen from, before repetition penalty, top-k/p/min-p and temperature
// (the model's distribution, as OpenAI reports it). Identical with and
// without speculation and in every stream.
struct TokenLogprob {
  int32_t token = -1;
  std::string bytes;  // the token's own bytes (may be part of a UTF-8 character)
  float logprob = 0;
};

struct GeneratedLogprob : TokenLogprob {
  std::vector<TokenLogprob> top;  // Request::logprobs most likely, most likely first
};

struct StreamResult {
  int stream = 0;
  std::string adapter;          // empty: base model
  std::string text;             // the generated text (valid UTF-8)
  std::vector<int32_t> tokens;  // the generated ids
  std::vector<GeneratedLogprob> logprobs;  // [t]: tokens[t]'s, with Request::logprobs >= 0
  FinishReason finish = FinishReason::kLength;
  int prompt_tokens = 0;           // shared prompt + own suffix
  double first_token_seconds = 0;  // since the request started
  double last_token_seconds = 0;
};

struct Timings {
  int prompt_tokens = 0;    // the shared prompt
  int prompt_prefills = 0;  // distinct adapters among the streams: prompt copies in the cache
  int prefill_rows = 0;     // prompt and suffix tokens run through the model
  int generated_tokens = 0;
  double prompt_seconds = 0;  // shared prompt prefill (all adapter groups at once)
  double suffix_seconds = 0;  // suffixes and first tokens
  double decode_seconds = 0;  // the rest, all streams together
  double total_seconds = 0;
  size_t kv_bytes_used = 0;  // KV cache bytes held by the request's streams at the end
};

// What DS2D did during a request (all zero when it is off).
struct SpeculationReport {
  int64_t steps = 0;             // forward passes in the decode phase
  int64_t trees = 0;             // (stream, step) pairs
  double tau = 0;                // mean tokens accepted per tree (plain decoding: 1)
  double rows_per_step = 0;
  std::vector<double> acceptance;  // [d - 1]: acceptance at depth d
  // [i]: the forecast file stream i drafted from ("": n-gram drafts only).
  std::vector<std::string> forecasts;
  bool forecasts_found = false;  // found beside the model and adapters, not named
  // Non-empty when speculation was asked for with fallback_to_plain and
  // could not be set up: the reason; the request then decoded plainly.
  std::string fallback;
};

struct Result {
  std::vector<int32_t> prompt_tokens;  // the shared prompt as tokenized
  std::vector<StreamResult> streams;   // in request order
  Timings timings;
  SpeculationReport speculation;
};

// Called for each generated token: stream index, token id, and the text it
// completes (may be empty while a UTF-8 character is split across tokens,
// or while the text may still become a stop string; a later piece carries
// it). Returning false stops that stream only. Text a stream still holds
// back when the request ends (a cut UTF-8 character, the start of a stop
// string that never completed) comes in one last call with token -1, after
// every stream finished. StreamResult::tokens holds every generated token,
// those of a stop string included.
using TokenCallback = std::function<bool(int stream, int32_t token, std::string_view piece)>;
// With Request::logprobs >= 0: called for each generated token right before
// the TokenCallback call of that token, with its log-probabilities (what
// StreamResult::logprobs collects), e.g. to stream them.
using LogprobCallback = std::function<void(int stream, const GeneratedLogprob& logprob)>;

struct RuntimeInfo {
  std::string model_path;
  int n_vocab = 0;
  int trained_context = 0;
  int context = 0;  // KV cells of this Runtime
  int max_streams = 0;
  int adapter_slots = 0;
  int adapter_max_rank = 0;
  std::string kernels;  // "avx2", "generic", ...
  size_t weight_bytes = 0;
  size_t kv_bytes = 0;
  std::string kv_type;  // "f16" or "f32"
  double load_seconds = 0;  // reading the model file and adapters
  double pack_seconds = 0;  // repacking weights and allocating the engine
  // For chat formatting: the model's chat template (Jinja source, GGUF
  // tokenizer.chat_template; empty: none) and the texts of its BOS and EOS
  // tokens (empty where the vocabulary has none).
  std::string chat_template;
  std::string bos_token;
  std::string eos_token;
  bool speculation = false;  // DS2D on (false after an "auto" fallback)
};

class Runtime {
 public:
  // Loads the model (GGUF or llama2.c), the adapters of options.adapters,
  // and packs everything for the CPU.
  explicit Runtime(const std::string& model_path, const RuntimeOptions& options = {});
  ~Runtime();
  Runtime(Runtime&&) noexcept;
  Runtime& operator=(Runtime&&) noexcept;

  // Loads an adapter into a free slot; cheap next to opening the model, the
  // base weights are never touched. Throws when the name is taken, no slot
  // is free, or the adapter does not fit the model or the slots' rank.
  void load_adapter(const std::string& name, const std::string& path, float scale = 1.0f);
  void unload_adapter(const std::string& name);
  // The user scale of a loaded adapter (effective: scale x alpha / rank).
  void set_adapter_scale(const std::string& name, float scale);
  std::vector<std::string> adapters() const;  // names of the loaded ones

  Result generate(const Request& request, const TokenCallback& on_token = {});
  Result generate(const Request& request, const TokenCallback& on_token,
                  const LogprobCallback& on_logprob);

  // parse_special: as Request::parse_special.
  std::vector<int32_t> tokenize(std::string_view text, bool add_bos, bool parse_special = false) const;
  std::string detokenize(const std::vector<int32_t>& tokens) const;
  RuntimeInfo info() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus
