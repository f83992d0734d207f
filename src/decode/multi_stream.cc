// The multi-stream scheduler; see multi_stream.h.
#include "decode/multi_stream.h"

#include <algorithm>
#include <string_view>

#include "decode/accept_token.h"
#include "decode/kv_room.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus {
namespace {

// A run of consecutive tokens of one stream, prefilled as a chain of rows.
struct PrefillJob {
  int stream = 0;
  int adapter = -1;
  std::span<const int32_t> tokens;
  int32_t start_pos = 0;
  bool want_logits = false;  // of its last token
};

// Packs the jobs into steps of at most max_rows rows, several jobs (streams,
// adapters) per step; a job split across steps continues from its committed
// cells. Calls on_logits(job index, logits) for jobs that want them.
template <typename OnLogits>
int run_prefill(Engine& engine, std::span<const PrefillJob> jobs, OnLogits&& on_logits) {
  const size_t max_rows = static_cast<size_t>(engine.options().max_rows);
  const size_t n_vocab = static_cast<size_t>(engine.config().n_vocab);
  std::vector<Row> rows;
  std::vector<size_t> wanting;  // job index of each logits row of the step
  rows.reserve(max_rows);
  int steps = 0;
  size_t j = 0, done = 0;  // the current job and how many of its tokens are in
  while (j < jobs.size()) {
    rows.clear();
    wanting.clear();
    while (j < jobs.size() && rows.size() < max_rows) {
      const PrefillJob& job = jobs[j];
      const size_t take = std::min(job.tokens.size() - done, max_rows - rows.size());
      for (size_t t = 0; t < take; ++t) {
        Row r;
        r.token = job.tokens[done + t];
        r.pos = job.start_pos + static_cast<int32_t>(done + t);
        r.stream = static_cast<int16_t>(job.stream);
        r.adapter = static_cast<int16_t>(job.adapter);
        r.parent = t == 0 ? -1 : static_cast<int32_t>(rows.size()) - 1;
        r.want_logits = job.want_logits && done + t + 1 == job.tokens.size();
        if (r.want_logits) wanting.push_back(j);
        rows.push_back(r);
      }
      done += take;
      if (done == job.tokens.size()) {
        ++j;
        done = 0;
      }
    }
    const std::span<const float> logits = engine.step(rows);
    ++steps;
    for (size_t w = 0; w < wanting.size(); ++w) {
      on_logits(wanting[w], logits.subspan(w * n_vocab, n_vocab));
    }
  }
  return steps;
}

// Streams that share an adapter share one prefill of the prompt: the first
// stream of each adapter owns it. owner[i] is the owner of stream i.
std::vector<int> prompt_owners(const MultiStreamRequest& req) {
  std::vector<int> owner(req.streams.size());
  for (size_t i = 0; i < req.streams.size(); ++i) {
    owner[i] = static_cast<int>(i);
    for (size_t o = 0; o < i; ++o) {
      if (req.streams[o].adapter == req.streams[i].adapter) {
        owner[i] = static_cast<int>(o);
        break;
      }
    }
  }
  return owner;
}

// Cells free once streams 0..k-1 release theirs: free and pending cells
// (pending ones are dropped by the next step) plus committed cells no other
// stream holds.
int64_t cells_available(const KvCache& kv, int k) {
  const uint64_t ours = k >= 64 ? ~uint64_t{0} : (uint64_t{1} << k) - 1;
  int64_t n = 0;
  for (int32_t c = 0; c < kv.n_cells(); ++c) {
    if (kv.cell_state(c) != KvCache::CellState::kCommitted || (kv.cell_streams(c) & ~ours) == 0)
      ++n;
  }
  return n;
}

void check_tokens(std::span<const int32_t> tokens, int n_vocab, const std::string& where) {
  for (size_t t = 0; t < tokens.size(); ++t) {
    check(tokens[t] >= 0 && tokens[t] < n_vocab, where,
          "token {} = {} is outside the vocabulary [0, {})", t, tokens[t], n_vocab);
  }
}

}  // namespace

void validate_request_shape(const Engine& engine, const MultiStreamRequest& req) {
  const EngineOptions& eo = engine.options();
  const int n_vocab = engine.config().n_vocab;
  const int k = static_cast<int>(req.streams.size());
  check(k >= 1, "streams", "a request needs at least one stream");
  check(k <= eo.max_streams, "streams", "{} streams exceed the engine's capacity of {}", k,
        eo.max_streams);
  check(!req.prompt.empty(), "prompt", "is empty; it needs at least one token (usually BOS)");
  check_tokens(req.prompt, n_vocab, "prompt");
  check(req.limits.n_predict >= 0, "n_predict", "must be >= 0, got {}", req.limits.n_predict);
  check(req.limits.top_logprobs >= -1 && req.limits.top_logprobs <= kMaxTopLogprobs, "logprobs",
        "must be -1 (off) or 0..{} alternatives, got {}", kMaxTopLogprobs,
        req.limits.top_logprobs);

  const int64_t n_prompt = static_cast<int64_t>(req.prompt.size());
  for (int i = 0; i < k; ++i) {
    const StreamSpec& s = req.streams[i];
    const std::string where = fmt::format("stream {}", i);
    check(s.adapter == -1 || (s.adapter >= 0 && s.adapter < engine.adapters().slots() &&
                              engine.adapters().loaded(s.adapter)),
          where, "adapter slot {} is not loaded ({} slots)", s.adapter, engine.adapters().slots());
    check_tokens(s.suffix, n_vocab, where + ": suffix");
    try {
      validate(s.sampler);
    } catch (const Error& e) {
      throw Error(where, e.what());
    }
    check(s.first_token_rank >= -1 && s.first_token_rank < n_vocab, where,
          "first_token_rank must be -1 or 0..{}, got {}", n_vocab - 1, s.first_token_rank);
    const int64_t n_suffix = static_cast<int64_t>(s.suffix.size());
    check(n_prompt + n_suffix + req.limits.n_predict <= eo.context, where,
          "{} prompt + {} suffix tokens + {} to generate exceed the context of {}", n_prompt,
          n_suffix, req.limits.n_predict, eo.context);
  }
}

void validate_request(const Engine& engine, const MultiStreamRequest& req) {
  validate_request_shape(engine, req);
  const EngineOptions& eo = engine.options();
  const int k = static_cast<int>(req.streams.size());
  const int64_t cells = kv_cells_needed(kv_demand(req), req.limits.n_predict);
  const int64_t available = cells_available(engine.kv_cache(), k);
  check(cells <= available, "streams",
        "{} streams need {} KV cells (the prompt once per adapter, each suffix, {} new tokens "
        "each) but the cache has {} of {} (use a bigger context, fewer streams or fewer tokens)",
        k, cells, req.limits.n_predict, available, eo.context);
}

MultiStreamResult run_streams(Engine& engine, const MultiStreamRequest& req,
                              const OnStreamToken& on_token, const DecodeLoop& loop) {
  validate_request(engine, req);
  const double t0 = now_seconds();
  const int k = static_cast<int>(req.streams.size());
  const int n_prompt = static_cast<int>(req.prompt.size());
  const Tokenizer* tok = req.limits.tokenizer;
  KvCache& kv = engine.kv_cache();
  for (int i = 0; i < k; ++i) kv.clear_stream(i);

  MultiStreamResult result;
  result.streams.resize(k);
  MultiStreamStats& stats = result.stats;
  stats.n_streams = k;
  stats.n_prompt = n_prompt;

  std::vector<Sampler> samplers;
  samplers.reserve(k);
  std::vector<StreamState> states(k);
  for (int i = 0; i < k; ++i) {
    const StreamSpec& spec = req.streams[i];
    samplers.emplace_back(spec.sampler);
    StreamState& s = states[i];
    s.stream = i;
    s.adapter = spec.adapter;
    s.pos = n_prompt + static_cast<int>(spec.suffix.size());
    s.sampler = &samplers[i];
    s.history.reserve(s.pos + req.limits.n_predict);
    s.history.assign(req.prompt.begin(), req.prompt.end());
    s.history.insert(s.history.end(), spec.suffix.begin(), spec.suffix.end());
    result.streams[i].n_prompt = s.pos;
    result.streams[i].tokens.reserve(req.limits.n_predict);  // reporting a token allocates nothing
  }

  // Every reported token passes here: results, timings, then the caller.
  const OnStreamToken report = [&](int i, int32_t id) {
    StreamOutcome& out = result.streams[i];
    out.tokens.push_back(id);
    if (req.limits.top_logprobs >= 0 && req.on_logprobs) req.on_logprobs(i, states[i].logprobs);
    out.last_token_seconds = now_seconds() - t0;
    if (out.tokens.size() == 1) out.first_token_seconds = out.last_token_seconds;
    return on_token(i, id);
  };

  // 1. The shared prompt, once per adapter group, all groups in the same steps.
  const std::vector<int> owner = prompt_owners(req);
  std::vector<PrefillJob> jobs;
  std::vector<int> group_of_job;
  std::vector<std::vector<float>> group_logits(k);  // for streams without a suffix
  for (int i = 0; i < k; ++i) {
    if (owner[i] != i) continue;
    bool needs_logits = false;
    for (int m = i; m < k; ++m) needs_logits |= owner[m] == i && req.streams[m].suffix.empty();
    jobs.push_back({i, req.streams[i].adapter, req.prompt, 0, needs_logits});
    group_of_job.push_back(i);
  }
  stats.prompt_groups = static_cast<int>(jobs.size());
  stats.prefill_rows = n_prompt * stats.prompt_groups;
  stats.prefill_steps += run_prefill(engine, jobs, [&](size_t j, std::span<const float> logits) {
    group_logits[group_of_job[j]].assign(logits.begin(), logits.end());
  });
  const double t1 = now_seconds();
  stats.prompt_seconds = t1 - t0;

  // 2. The other streams of each group share its prompt cells.
  for (int i = 0; i < k; ++i) {
    if (owner[i] != i) kv.fork_stream(owner[i], i);
  }

  // 3. Suffixes of all streams, batched; then each stream's first token.
  auto first_token = [&](int i, std::span<const float> logits) {
    accept_first_token(states[i], i, logits, req.streams[i].first_token_rank, req.limits, report);
  };
  jobs.clear();
  std::vector<int> stream_of_job;
  for (int i = 0; i < k; ++i) {
    const StreamSpec& spec = req.streams[i];
    if (spec.suffix.empty()) continue;
    jobs.push_back({i, spec.adapter, spec.suffix, n_prompt, true});
    stream_of_job.push_back(i);
    stats.prefill_rows += static_cast<int>(spec.suffix.size());
  }
  for (int i = 0; i < k; ++i) {
    if (req.streams[i].suffix.empty()) first_token(i, group_logits[owner[i]]);
  }
  stats.prefill_steps += run_prefill(engine, jobs, [&](size_t j, std::span<const float> logits) {
    first_token(stream_of_job[j], logits);
  });
  const double t2 = now_seconds();
  stats.suffix_seconds = t2 - t1;

  // 4. Decode every live stream together.
  loop(engine, states, req.limits, report);
  const double t3 = now_seconds();
  stats.decode_seconds = t3 - t2;
  stats.total_seconds = t3 - t0;
  for (int i = 0; i < k; ++i) {
    StreamOutcome& out = result.streams[i];
    out.stop_reason = states[i].stop_reason;
    stats.n_generated += static_cast<int>(out.tokens.size());
  }
  stats.kv_cells_used = kv.n_cells_used();
  stats.kv_bytes_used = kv.bytes_used();
  return result;
}

}  // namespace chorus
