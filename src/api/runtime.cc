// chorus::Runtime: the public API (include/chorus/chorus.h) over the model,
// the engine and the multi-stream scheduler. It only translates: names to
// adapter slots, text to tokens and back, public options to internal ones.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "api/stop_matcher.h"
#include "chorus/chorus.h"
#include "decode/ds2d.h"
#include "decode/kv_room.h"
#include "decode/multi_stream.h"
#include "engine/engine.h"
#include "model/forecast_find.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus {
namespace {

WeightFormat weight_format(const std::string& s, const char* option) {
  if (s == "auto") return WeightFormat::kAuto;
  if (s == "int4") return WeightFormat::kInt4;
  if (s == "int8") return WeightFormat::kInt8;
  if (s == "f32") return WeightFormat::kF32;
  throw Error(option, "unknown format '" + s + "' (expected auto, int4, int8 or f32)");
}

FinishReason finish_reason(StopReason r) {
  switch (r) {
    case StopReason::kLength:
      return FinishReason::kLength;
    case StopReason::kEndOfGeneration:
      return FinishReason::kEndOfGeneration;
    case StopReason::kCallback:
    case StopReason::kCancelled:
      return FinishReason::kCallback;
  }
  return FinishReason::kLength;
}

SamplerParams sampler_params(const Sampling& s, uint64_t seed) {
  SamplerParams p;
  p.temperature = s.temperature;
  p.top_k = s.top_k;
  p.top_p = s.top_p;
  p.min_p = s.min_p;
  p.repeat_penalty = s.repeat_penalty;
  p.repeat_last_n = s.repeat_last_n;
  p.seed = seed;
  return p;
}

// A forecast file to load and the adapter whose streams it serves: the one
// the file names (a named file), or the one it was found beside ("" for the
// model itself).
struct ForecastSource {
  std::string path;
  std::optional<std::string> serves;
};

std::vector<ForecastSource> forecast_sources(const std::string& model_path,
                                             const RuntimeOptions& options) {
  const SpeculationOptions& sp = options.speculation;
  std::vector<ForecastSource> out;
  for (const std::string& path : sp.forecasts) out.push_back({path, std::nullopt});
  if (!sp.forecasts.empty() || !sp.find_forecasts) return out;
  if (std::string f = find_forecast(model_path); !f.empty()) out.push_back({f, ""});
  for (const AdapterFile& a : options.adapters) {
    if (std::string f = find_forecast(a.path); !f.empty()) out.push_back({f, a.name});
  }
  return out;
}

}  // namespace

const char* to_string(FinishReason r) {
  switch (r) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kEndOfGeneration:
      return "eog";
    case FinishReason::kStopString:
      return "stop";
    case FinishReason::kCallback:
      return "callback";
  }
  return "?";
}

constexpr int kMaxSpeculationBudget = 256;

struct Runtime::Impl {
  std::unique_ptr<Model> model;
  std::unique_ptr<Engine> engine;
  double load_seconds = 0;
  double pack_seconds = 0;
  // DS2D: its options, the forecast sets (loaded once) and the acceptance
  // statistics kept across requests, per adapter.
  SpeculationOptions speculation;
  std::string speculation_fallback;  // why speculation is off despite "auto"
  Ds2dOptions ds2d;
  std::vector<std::unique_ptr<ForecastEmbeddings>> forecasts;
  bool forecasts_found = false;  // found beside the files, not named
  Ds2dTuner tuner;

  // The forecasts for a stream bound to `adapter` (empty: base model).
  const ForecastEmbeddings* forecast_for(std::string_view adapter) const {
    const ForecastEmbeddings* base = nullptr;
    for (const auto& f : forecasts) {
      if (f->adapter == adapter) return f.get();
      if (f->adapter.empty()) base = f.get();
    }
    return base;
  }

  const Tokenizer& tokenizer() const {
    check(model->tokenizer != nullptr, model->path, "the model has no tokenizer");
    return *model->tokenizer;
  }
};

Runtime::Runtime(const std::string& model_path, const RuntimeOptions& options)
    : impl_(std::make_unique<Impl>()) {
  check(options.threads >= 1 && options.threads <= 256, "threads", "must be 1..256, got {}",
        options.threads);
  const double t0 = now_seconds();
  impl_->model = load_model(model_path, options.tokenizer);
  const ModelConfig& c = impl_->model->config;
  check(options.context >= 0 && options.context <= c.context_length, "context",
        "must be 0 (default) or 1..{} (the model's trained context), got {}", c.context_length,
        options.context);

  // Adapter files are read before the engine exists: their ranks size the slots.
  std::vector<LoraAdapter> loras;
  std::set<std::string> names;
  int max_rank = options.adapter_max_rank;
  for (const AdapterFile& f : options.adapters) {
    check(!f.name.empty(), f.path, "an adapter needs a name");
    check(names.insert(f.name).second, f.name, "two adapters have this name");
    loras.push_back(load_lora(f.path, c));
    max_rank = std::max(max_rank, loras.back().max_rank);
  }
  const double t1 = now_seconds();
  impl_->load_seconds = t1 - t0;

  EngineOptions eo;
  eo.threads = options.threads;
  eo.context = options.context;
  eo.max_streams = options.max_streams;
  eo.max_rows = options.max_rows;
  eo.weights = weight_format(options.weights, "weights");
  eo.output = weight_format(options.output_head, "output_head");
  eo.kv_type = parse_kv_type(options.kv_type, "kv_type");
  // Forecast files may bring a LoRA for their forecast rows: one more slot each.
  SpeculationOptions sp = options.speculation;
  // With "auto", a speculation setup that does not fit turns speculation
  // off (and says why) instead of failing the whole runtime.
  auto speculation_failed = [&](const Error& e) {
    if (!sp.fallback_to_plain) throw;  // called from the handler: rethrows the Error
    impl_->speculation_fallback = e.what();
    impl_->forecasts.clear();
    sp.enabled = false;
  };
  int forecast_slots = 0;
  const int base_max_rank = max_rank;
  if (sp.enabled) {
    try {
      // Rows per step grow with the budget (budget x streams), so it is
      // bounded before anything is allocated.
      check(sp.budget >= 1 && sp.budget <= kMaxSpeculationBudget, "ds2d budget", "must be 1..{}, got {}",
            kMaxSpeculationBudget, sp.budget);
      impl_->forecasts_found = sp.forecasts.empty() && sp.find_forecasts;
      for (const ForecastSource& source : forecast_sources(model_path, options)) {
        impl_->forecasts.push_back(
            std::make_unique<ForecastEmbeddings>(load_forecast(source.path, *impl_->model)));
        if (source.serves) impl_->forecasts.back()->adapter = *source.serves;
        const std::string& lora = impl_->forecasts.back()->lora_path;
        if (lora.empty()) continue;
        ++forecast_slots;
        max_rank = std::max(max_rank, load_lora(lora, c).max_rank);
      }
    } catch (const Error& e) {
      speculation_failed(e);
      forecast_slots = 0;
      max_rank = base_max_rank;
    }
  }
  eo.adapter_slots = std::max(options.adapter_slots, static_cast<int>(options.adapters.size())) +
                     forecast_slots;
  eo.adapter_max_rank = eo.adapter_slots > 0 ? std::max(max_rank, 1) : 0;
  if (sp.enabled) eo.max_rows = std::max(eo.max_rows, sp.budget * std::max(1, options.max_streams));
  impl_->engine = std::make_unique<Engine>(*impl_->model, eo);
  for (size_t i = 0; i < loras.size(); ++i) {
    impl_->engine->adapters().load(options.adapters[i].name, loras[i], options.adapters[i].scale);
  }
  impl_->speculation = sp;
  impl_->ds2d.budget = sp.budget;
  impl_->ds2d.ngram = sp.ngram;
  impl_->ds2d.row_cost = sp.row_cost;
  for (auto& f : impl_->forecasts) load_forecast_lora(*impl_->engine, *f);
  if (sp.enabled) {
    std::vector<const ForecastEmbeddings*> all;
    for (const auto& f : impl_->forecasts) all.push_back(f.get());
    // Checks budget and forecasts against the engine now, not at the first request.
    try {
      for (const ForecastEmbeddings* f : all) {
        validate_ds2d(*impl_->engine, impl_->ds2d, std::span(&f, 1), 1);
      }
      if (all.empty()) validate_ds2d(*impl_->engine, impl_->ds2d, {}, 1);
    } catch (const Error& e) {
      speculation_failed(e);
      impl_->speculation = sp;
    }
  }
  impl_->pack_seconds = now_seconds() - t1;
}

Runtime::~Runtime() = default;
Runtime::Runtime(Runtime&&) noexcept = default;
Runtime& Runtime::operator=(Runtime&&) noexcept = default;

void Runtime::load_adapter(const std::string& name, const std::string& path, float scale) {
  AdapterPool& pool = impl_->engine->adapters();
  check(pool.find(name) < 0, name, "an adapter of this name is already loaded");
  pool.load(name, load_lora(path, impl_->model->config), scale);
}

void Runtime::unload_adapter(const std::string& name) {
  AdapterPool& pool = impl_->engine->adapters();
  pool.unload(pool.slot_of(name));
}

void Runtime::set_adapter_scale(const std::string& name, float scale) {
  AdapterPool& pool = impl_->engine->adapters();
  pool.set_scale(pool.slot_of(name), scale);
}

std::vector<std::string> Runtime::adapters() const {
  const AdapterPool& pool = impl_->engine->adapters();
  std::vector<std::string> out;
  for (int s = 0; s < pool.slots(); ++s) {
    if (pool.loaded(s)) out.emplace_back(pool.name(s));
  }
  return out;
}

std::vector<int32_t> Runtime::tokenize(std::string_view text, bool add_bos, bool parse_special) const {
  return impl_->tokenizer().encode(text, add_bos, parse_special);
}

std::string Runtime::detokenize(const std::vector<int32_t>& tokens) const {
  return impl_->tokenizer().decode(tokens);
}

RuntimeInfo Runtime::info() const {
  const Engine& e = *impl_->engine;
  RuntimeInfo i;
  i.model_path = impl_->model->path;
  i.n_vocab = e.config().n_vocab;
  i.trained_context = impl_->model->config.context_length;
  i.context = e.options().context;
  i.max_streams = e.options().max_streams;
  i.adapter_slots = e.adapters().slots();
  i.adapter_max_rank = e.adapters().max_rank();
  i.kernels = std::string(e.kernel_name());
  i.weight_bytes = e.weight_bytes();
  i.kv_bytes = e.kv_bytes();
  i.kv_type = std::string(kv_type_name(e.kv_cache().type()));
  i.load_seconds = impl_->load_seconds;
  i.pack_seconds = impl_->pack_seconds;
  if (impl_->model->tokenizer) {
    const Vocab& v = impl_->model->tokenizer->vocab();
    const auto text = [&](int32_t id) { return id >= 0 && id < v.size() ? v.tokens[id] : std::string(); };
    i.chat_template = v.chat_template;
    i.bos_token = text(v.bos);
    i.eos_token = text(v.eos);
  }
  i.speculation = impl_->speculation.enabled;
  return i;
}

Result Runtime::generate(const Request& request, const TokenCallback& on_token) {
  return generate(request, on_token, {});
}

Result Runtime::generate(const Request& request, const TokenCallback& on_token,
                         const LogprobCallback& on_logprob) {
  Engine& engine = *impl_->engine;
  const Tokenizer& tok = impl_->tokenizer();
  const std::vector<StreamOptions> one_stream(1);
  const std::vector<StreamOptions>& streams =
      request.streams.empty() ? one_stream : request.streams;
  const int k = static_cast<int>(streams.size());

  MultiStreamRequest req;
  req.prompt = tok.encode(request.prompt, request.add_bos, request.parse_special);
  check(!req.prompt.empty(), "prompt", "is empty and no BOS token is added");
  req.limits.ignore_eos = request.ignore_eos;
  req.limits.tokenizer = &tok;
  req.limits.top_logprobs = request.logprobs;
  std::map<int, float> scales;  // per-request adapter scales by slot
  for (int i = 0; i < k; ++i) {
    const StreamOptions& so = streams[i];
    StreamSpec spec;
    spec.adapter = so.adapter.empty() ? -1 : engine.adapters().slot_of(so.adapter);
    if (!so.suffix.empty()) spec.suffix = tok.encode(so.suffix, false);
    spec.sampler = sampler_params(request.sampling, so.seed ? *so.seed : request.sampling.seed + i);
    spec.first_token_rank = so.first_token_rank;
    if (so.adapter_scale) {
      const float s = *so.adapter_scale;
      check(spec.adapter >= 0, fmt::format("stream {}", i), "adapter_scale needs an adapter");
      check(std::isfinite(s) && s >= 0, fmt::format("stream {}", i),
            "adapter_scale must be finite and >= 0, got {}", s);
      auto [it, fresh] = scales.emplace(spec.adapter, s);
      check(fresh || it->second == s, fmt::format("stream {}", i),
            "adapter '{}' at scale {} and {} in one request (one scale per adapter)", so.adapter,
            it->second, s);
    }
    req.streams.push_back(std::move(spec));
  }
  check(request.logprobs >= -1 && request.logprobs <= kMaxTopLogprobs, "logprobs",
        "must be -1 (off) or 0..{} alternatives, got {}", kMaxTopLogprobs, request.logprobs);
  check(request.n_predict >= -1, "n_predict", "must be -1 (fill the context) or >= 0, got {}",
        request.n_predict);
  if (request.n_predict >= 0) {
    req.limits.n_predict = request.n_predict;
  } else {
    // As many per stream as both every stream's positions and the shared
    // cells allow (the whole cache is this request's).
    const int64_t context = engine.options().context;
    req.limits.n_predict = static_cast<int>(kv_max_new_tokens(kv_demand(req), context, context));
  }

  // The previous request's cells are of no use any more.
  engine.kv_cache().clear();
  // Per-request adapter scales hold for this call only.
  struct ScaleRestore {
    AdapterPool& pool;
    std::vector<std::pair<int, float>> saved;
    ~ScaleRestore() {
      for (const auto& [slot, scale] : saved) pool.set_scale(slot, scale);
    }
  } restore{engine.adapters(), {}};
  for (const auto& [slot, scale] : scales) {
    restore.saved.emplace_back(slot, engine.adapters().user_scale(slot));
    engine.adapters().set_scale(slot, scale);
  }

  Result result;
  std::vector<StreamDecoder> decoders(k, StreamDecoder(tok));
  std::vector<std::string> texts(k);
  // Stop strings apply to the text after UTF-8 reassembly; what a matcher
  // holds back reaches the caller later (or never, when it was a stop).
  std::vector<StopMatcher> stops(k, StopMatcher(request.stop));
  DecodeLoop loop = decode_plain;
  Ds2dStats ds2d_stats;
  const bool speculate = impl_->speculation.enabled && request.speculate;
  if (speculate) {
    std::vector<const ForecastEmbeddings*> per_stream;
    for (const StreamOptions& so : streams) per_stream.push_back(impl_->forecast_for(so.adapter));
    loop = ds2d_decode_loop(impl_->ds2d, std::move(per_stream), &ds2d_stats, &impl_->tuner);
  }
  std::vector<std::vector<GeneratedLogprob>> logprobs(k);
  req.on_logprobs = [&](int i, const TokenLogprobs& lp) {
    GeneratedLogprob g;
    g.token = lp.id;
    g.bytes = tok.token_bytes(lp.id);
    g.logprob = lp.logprob;
    for (size_t t = 0; t < lp.top_ids.size(); ++t) {
      g.top.push_back({lp.top_ids[t], tok.token_bytes(lp.top_ids[t]), lp.top_logprobs[t]});
    }
    if (on_logprob) on_logprob(i, g);
    logprobs[i].push_back(std::move(g));
  };
  const MultiStreamResult r = run_streams(
      engine, req,
      [&](int i, int32_t id) {
        std::string piece = decoders[i].push(id);
        if (stops[i].active()) piece = stops[i].push(piece);
        texts[i] += piece;
        const bool go_on = on_token ? on_token(i, id, piece) : true;
        return go_on && !stops[i].stopped();
      },
      loop);
  result.speculation.fallback = impl_->speculation_fallback;
  if (speculate) {
    SpeculationReport& sr = result.speculation;
    sr.steps = ds2d_stats.steps;
    sr.trees = ds2d_stats.trees;
    sr.tau = ds2d_stats.tau();
    sr.rows_per_step = ds2d_stats.rows_per_step();
    for (size_t d = 1; d <= ds2d_stats.reached.size(); ++d) {
      sr.acceptance.push_back(ds2d_stats.acceptance(static_cast<int>(d)));
    }
    for (const StreamOptions& so : streams) {
      const ForecastEmbeddings* f = impl_->forecast_for(so.adapter);
      sr.forecasts.push_back(f != nullptr ? f->path : "");
    }
    sr.forecasts_found = impl_->forecasts_found;
  }

  result.prompt_tokens = req.prompt;
  for (int i = 0; i < k; ++i) {
    std::string rest = decoders[i].flush();
    if (stops[i].active()) {
      rest = stops[i].push(rest);
      rest += stops[i].flush();
    }
    if (!rest.empty()) {
      texts[i] += rest;
      if (on_token) on_token(i, -1, rest);
    }
    const StreamOutcome& o = r.streams[i];
    StreamResult s;
    s.stream = i;
    s.adapter = streams[i].adapter;
    s.text = std::move(texts[i]);
    s.tokens = o.tokens;
    s.logprobs = std::move(logprobs[i]);
    s.finish = stops[i].stopped() ? FinishReason::kStopString : finish_reason(o.stop_reason);
    s.prompt_tokens = o.n_prompt;
    s.first_token_seconds = o.first_token_seconds;
    s.last_token_seconds = o.last_token_seconds;
    result.streams.push_back(std::move(s));
  }
  Timings& t = result.timings;
  t.prompt_tokens = r.stats.n_prompt;
  t.prompt_prefills = r.stats.prompt_groups;
  t.prefill_rows = r.stats.prefill_rows;
  t.generated_tokens = r.stats.n_generated;
  t.prompt_seconds = r.stats.prompt_seconds;
  t.suffix_seconds = r.stats.suffix_seconds;
  t.decode_seconds = r.stats.decode_seconds;
  t.total_seconds = r.stats.total_seconds;
  t.kv_bytes_used = r.stats.kv_bytes_used;
  return result;
}

}  // namespace chorus
