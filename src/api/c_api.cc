// The C API (include/chorus/chorus_c.h) over the C++ Runtime: every entry
// point catches everything, so no exception crosses into C; structs are
// read and written only as far as the caller's struct_size reaches.
#include "chorus/chorus_c.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "chorus/chorus.h"

struct chorus_runtime {
  explicit chorus_runtime(chorus::Runtime r)
      : runtime(std::move(r)), adapter_names(runtime.adapters()), info(runtime.info()) {}
  chorus::Runtime runtime;
  // chorus_cancel sets `cancel` only while `generating`; both are read by
  // the generating thread's token callback.
  std::atomic<bool> generating{false};
  std::atomic<bool> cancel{false};
  // What chorus_adapter_name hands out: renewed by each load and unload only.
  std::vector<std::string> adapter_names;
  // The strings chorus_runtime_get_info hands out, set once (they never change).
  const chorus::RuntimeInfo info;
};

struct chorus_result {
  chorus::Result result;
  std::vector<bool> cancelled;  // per stream: stopped by chorus_cancel
};

namespace {

thread_local std::string g_last_error;

void set_error(const std::string& what) { g_last_error = what; }

// Runs fn, turning any exception into the thread's last error and `failed`.
template <typename T, typename F>
T guarded(T failed, F&& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    set_error("out of memory");
  } catch (const std::exception& e) {
    set_error(e.what());
  } catch (...) {
    set_error("unknown error");
  }
  return failed;
}

bool require(const void* p, const char* function, const char* argument) {
  if (p != nullptr) return true;
  set_error(std::string(function) + ": " + argument + " is NULL");
  return false;
}

// A struct_size that _init could have set: at least the field itself, and
// not garbage from an uninitialized struct.
bool plausible_size(size_t size) { return size >= sizeof(size_t) && size <= 4096; }

// The caller's struct as this library knows it: its first struct_size bytes
// over the defaults of `init` (fields a caller's older header lacked).
template <typename T>
bool read_struct(const T* in, void (*init)(T*), const char* function, const char* what, T* out) {
  init(out);
  const size_t size = in->struct_size;
  if (!plausible_size(size)) {
    set_error(std::string(function) + ": " + what + ".struct_size is " + std::to_string(size) +
              " (call its _init function first)");
    return false;
  }
  std::memcpy(static_cast<void*>(out), in, std::min(size, sizeof(T)));
  out->struct_size = sizeof(T);
  return true;
}

// Writes `full` into the caller's output struct, as far as its struct_size reaches.
template <typename T>
bool write_struct(const T& full, T* out, const char* function, const char* what) {
  const size_t size = out->struct_size;
  if (!plausible_size(size)) {
    set_error(std::string(function) + ": " + what + "->struct_size is " + std::to_string(size) +
              " (call its _init function first)");
    return false;
  }
  const size_t n = std::min(size, sizeof(T));
  std::memcpy(static_cast<void*>(out), &full, n);
  out->struct_size = n;
  return true;
}

// A C array of strings; a count without an array is an error.
std::vector<std::string> strings(const char* const* a, int n, const std::string& what) {
  if (n < 0 || (n > 0 && a == nullptr)) {
    throw chorus::Error(what, "n > 0 needs an array, got n = " + std::to_string(n) +
                                  (a == nullptr ? " and NULL" : ""));
  }
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    if (a[i] == nullptr) throw chorus::Error(what, "entry " + std::to_string(i) + " is NULL");
    out.emplace_back(a[i]);
  }
  return out;
}

chorus::RuntimeOptions runtime_options(const chorus_runtime_options& o) {
  chorus::RuntimeOptions opt;
  if (o.tokenizer != nullptr) opt.tokenizer = o.tokenizer;
  opt.threads = o.threads;
  opt.context = o.context;
  opt.max_streams = o.max_streams;
  opt.max_rows = o.max_rows;
  opt.adapter_slots = o.adapter_slots;
  opt.adapter_max_rank = o.adapter_max_rank;
  if (o.weights != nullptr) opt.weights = o.weights;
  if (o.output_head != nullptr) opt.output_head = o.output_head;
  const std::string mode = o.ds2d != nullptr ? o.ds2d : "off";
  if (mode != "off" && mode != "on" && mode != "auto") {
    throw chorus::Error("ds2d", "must be off, on or auto, got '" + mode + "'");
  }
  chorus::SpeculationOptions& sp = opt.speculation;
  sp.enabled = mode != "off";
  sp.fallback_to_plain = mode == "auto";
  sp.forecasts = strings(o.ds2d_forecasts, o.n_ds2d_forecasts, "ds2d_forecasts");
  if (!sp.enabled && !sp.forecasts.empty()) throw chorus::Error("ds2d_forecasts", "needs ds2d on or auto");
  sp.budget = o.ds2d_budget;
  sp.ngram = o.ds2d_ngram != 0;
  sp.row_cost = o.ds2d_row_cost;
  sp.find_forecasts = o.ds2d_find_forecasts != 0;
  if (o.kv_type != nullptr) opt.kv_type = o.kv_type;
  return opt;
}

const chorus::StreamResult* stream_of(const chorus_result* r, int stream, const char* function) {
  if (!require(r, function, "result")) return nullptr;
  if (stream < 0 || stream >= static_cast<int>(r->result.streams.size())) {
    set_error(std::string(function) + ": no stream " + std::to_string(stream) + " (the result has " +
              std::to_string(r->result.streams.size()) + ")");
    return nullptr;
  }
  return &r->result.streams[static_cast<size_t>(stream)];
}

// Clears chorus_runtime::generating when a generation ends, however it ends.
struct Generating {
  explicit Generating(chorus_runtime* rt) : rt(rt) {
    rt->cancel = false;
    rt->generating = true;
  }
  ~Generating() {
    rt->generating = false;
    rt->cancel = false;
  }
  chorus_runtime* rt;
};

}  // namespace

extern "C" {

const char* chorus_version(void) { return CHORUS_VERSION; }  // the CMake project version

void chorus_runtime_options_init(chorus_runtime_options* o) {
  if (o == nullptr) return;
  const chorus::RuntimeOptions d;
  *o = chorus_runtime_options{};
  o->struct_size = sizeof *o;
  o->threads = d.threads;
  o->context = d.context;
  o->max_streams = d.max_streams;
  o->max_rows = d.max_rows;
  o->adapter_slots = d.adapter_slots;
  o->adapter_max_rank = d.adapter_max_rank;
  o->ds2d_budget = d.speculation.budget;
  o->ds2d_ngram = d.speculation.ngram ? 1 : 0;
  o->ds2d_row_cost = d.speculation.row_cost;
  o->ds2d_find_forecasts = d.speculation.find_forecasts ? 1 : 0;
}

void chorus_stream_options_init(chorus_stream_options* o) {
  if (o == nullptr) return;
  *o = chorus_stream_options{};
  o->struct_size = sizeof *o;
  o->first_token_rank = -1;
}

void chorus_request_init(chorus_request* r) {
  if (r == nullptr) return;
  const chorus::Request d;
  *r = chorus_request{};
  r->struct_size = sizeof *r;
  r->add_bos = d.add_bos ? 1 : 0;
  r->n_predict = d.n_predict;
  r->ignore_eos = d.ignore_eos ? 1 : 0;
  r->temperature = d.sampling.temperature;
  r->top_k = d.sampling.top_k;
  r->top_p = d.sampling.top_p;
  r->min_p = d.sampling.min_p;
  r->repeat_penalty = d.sampling.repeat_penalty;
  r->repeat_last_n = d.sampling.repeat_last_n;
  r->seed = d.sampling.seed;
  r->speculate = d.speculate ? 1 : 0;
}

void chorus_timings_init(chorus_timings* t) {
  if (t == nullptr) return;
  *t = chorus_timings{};
  t->struct_size = sizeof *t;
}

void chorus_ds2d_report_init(chorus_ds2d_report* r) {
  if (r == nullptr) return;
  *r = chorus_ds2d_report{};
  r->struct_size = sizeof *r;
  r->fallback = "";
}

void chorus_runtime_info_init(chorus_runtime_info* i) {
  if (i == nullptr) return;
  *i = chorus_runtime_info{};
  i->struct_size = sizeof *i;
}

chorus_runtime* chorus_runtime_open(const char* model_path, const chorus_runtime_options* o) {
  if (!require(model_path, "chorus_runtime_open", "model_path")) return nullptr;
  chorus_runtime_options opt;
  if (o == nullptr) {
    chorus_runtime_options_init(&opt);
  } else if (!read_struct(o, chorus_runtime_options_init, "chorus_runtime_open", "options", &opt)) {
    return nullptr;
  }
  return guarded<chorus_runtime*>(nullptr, [&] {
    return new chorus_runtime(chorus::Runtime(model_path, runtime_options(opt)));
  });
}

void chorus_runtime_close(chorus_runtime* runtime) { delete runtime; }

int chorus_load_adapter(chorus_runtime* rt, const char* name, const char* path, float scale) {
  const char* f = "chorus_load_adapter";
  if (!require(rt, f, "runtime") || !require(name, f, "name") || !require(path, f, "path")) return -1;
  if (!std::isfinite(scale)) {
    set_error(std::string(f) + ": scale must be finite");
    return -1;
  }
  return guarded(-1, [&] {
    rt->runtime.load_adapter(name, path, scale);
    rt->adapter_names = rt->runtime.adapters();
    return 0;
  });
}

int chorus_unload_adapter(chorus_runtime* rt, const char* name) {
  const char* f = "chorus_unload_adapter";
  if (!require(rt, f, "runtime") || !require(name, f, "name")) return -1;
  return guarded(-1, [&] {
    rt->runtime.unload_adapter(name);
    rt->adapter_names = rt->runtime.adapters();
    return 0;
  });
}

int chorus_set_adapter_scale(chorus_runtime* rt, const char* name, float scale) {
  const char* f = "chorus_set_adapter_scale";
  if (!require(rt, f, "runtime") || !require(name, f, "name")) return -1;
  if (!std::isfinite(scale)) {
    set_error(std::string(f) + ": scale must be finite");
    return -1;
  }
  return guarded(-1, [&] {
    rt->runtime.set_adapter_scale(name, scale);
    return 0;
  });
}

int chorus_adapter_count(chorus_runtime* rt) {
  if (!require(rt, "chorus_adapter_count", "runtime")) return -1;
  return static_cast<int>(rt->adapter_names.size());
}

const char* chorus_adapter_name(chorus_runtime* rt, int index) {
  if (!require(rt, "chorus_adapter_name", "runtime")) return nullptr;
  if (index < 0 || index >= static_cast<int>(rt->adapter_names.size())) {
    set_error("chorus_adapter_name: no adapter " + std::to_string(index) + " (" +
              std::to_string(rt->adapter_names.size()) + " loaded)");
    return nullptr;
  }
  return rt->adapter_names[static_cast<size_t>(index)].c_str();
}

chorus_result* chorus_generate(chorus_runtime* rt, const chorus_request* request,
                               chorus_token_callback on_token, void* user_data) {
  const char* f = "chorus_generate";
  if (!require(rt, f, "runtime") || !require(request, f, "request")) return nullptr;
  chorus_request r;
  if (!read_struct(request, chorus_request_init, f, "request", &r)) return nullptr;
  if (!require(r.prompt, f, "request.prompt")) return nullptr;
  return guarded<chorus_result*>(nullptr, [&] {
    chorus::Request req;
    req.prompt = r.prompt;
    req.add_bos = r.add_bos != 0;
    req.n_predict = r.n_predict;
    req.ignore_eos = r.ignore_eos != 0;
    req.sampling.temperature = r.temperature;
    req.sampling.top_k = r.top_k;
    req.sampling.top_p = r.top_p;
    req.sampling.min_p = r.min_p;
    req.sampling.repeat_penalty = r.repeat_penalty;
    req.sampling.repeat_last_n = r.repeat_last_n;
    req.sampling.seed = r.seed;
    req.speculate = r.speculate != 0;
    req.parse_special = r.parse_special != 0;
    req.stop = strings(r.stop, r.n_stop, "request.stop");
    if (r.n_streams < 0 || (r.n_streams > 0 && r.streams == nullptr)) {
      throw chorus::Error("request.streams", "n_streams > 0 needs an array, got n_streams = " +
                                                 std::to_string(r.n_streams));
    }
    // The caller's elements are struct_size apart (its header's sizeof).
    const size_t stride = r.n_streams > 0 ? r.streams[0].struct_size : 0;
    if (stride % alignof(chorus_stream_options) != 0) {
      throw chorus::Error("request.streams[0]", "struct_size " + std::to_string(stride) +
                                                   " is no size of chorus_stream_options (call chorus_stream_options_init)");
    }
    for (int i = 0; i < r.n_streams; ++i) {
      const auto* in = reinterpret_cast<const chorus_stream_options*>(
          reinterpret_cast<const char*>(r.streams) + stride * static_cast<size_t>(i));
      const std::string where = "request.streams[" + std::to_string(i) + "]";
      if (in->struct_size != stride) {
        throw chorus::Error(where, "struct_size differs from streams[0]'s (call chorus_stream_options_init on each)");
      }
      chorus_stream_options s;
      if (!read_struct(in, chorus_stream_options_init, f, where.c_str(), &s)) {
        throw chorus::Error("", g_last_error);
      }
      chorus::StreamOptions so;
      if (s.adapter != nullptr) so.adapter = s.adapter;
      if (s.suffix != nullptr) so.suffix = s.suffix;
      if (s.has_seed) so.seed = s.seed;
      so.first_token_rank = s.first_token_rank;
      if (s.has_adapter_scale) so.adapter_scale = s.adapter_scale;
      req.streams.push_back(std::move(so));
    }
    const size_t k = std::max<size_t>(1, req.streams.size());
    auto out = std::make_unique<chorus_result>();
    out->cancelled.assign(k, false);
    std::vector<bool>& cancelled = out->cancelled;
    // The callback also carries cancellation: a cancelled stream stops at
    // its next token.
    chorus::TokenCallback callback = [&, on_token, user_data](int stream, int32_t token,
                                                              std::string_view piece) {
      const bool keep = on_token == nullptr ||
                        on_token(user_data, stream, token, piece.data(), piece.size()) != 0;
      if (token >= 0 && rt->cancel.load()) {
        cancelled[static_cast<size_t>(stream)] = true;
        return false;
      }
      return keep;
    };
    Generating generating(rt);
    out->result = rt->runtime.generate(req, callback);
    for (size_t i = 0; i < out->cancelled.size() && i < out->result.streams.size(); ++i) {
      // A stream that ended on its own at the very token the cancel came keeps its reason.
      if (out->result.streams[i].finish != chorus::FinishReason::kCallback) out->cancelled[i] = false;
    }
    return out.release();
  });
}

int chorus_cancel(chorus_runtime* rt) {
  if (!require(rt, "chorus_cancel", "runtime")) return -1;
  if (rt->generating.load()) rt->cancel = true;
  return 0;
}

int chorus_result_stream_count(const chorus_result* r) {
  if (!require(r, "chorus_result_stream_count", "result")) return -1;
  return static_cast<int>(r->result.streams.size());
}

const char* chorus_result_text(const chorus_result* r, int stream) {
  const chorus::StreamResult* s = stream_of(r, stream, "chorus_result_text");
  return s ? s->text.c_str() : nullptr;
}

const char* chorus_result_adapter(const chorus_result* r, int stream) {
  const chorus::StreamResult* s = stream_of(r, stream, "chorus_result_adapter");
  return s ? s->adapter.c_str() : nullptr;
}

const char* chorus_result_finish_reason(const chorus_result* r, int stream) {
  const chorus::StreamResult* s = stream_of(r, stream, "chorus_result_finish_reason");
  if (s == nullptr) return nullptr;
  if (r->cancelled[static_cast<size_t>(stream)]) return "cancelled";
  return chorus::to_string(s->finish);
}

int chorus_result_tokens(const chorus_result* r, int stream, const int32_t** ids) {
  const chorus::StreamResult* s = stream_of(r, stream, "chorus_result_tokens");
  if (s == nullptr) return -1;
  if (ids != nullptr) *ids = s->tokens.data();
  return static_cast<int>(s->tokens.size());
}

int chorus_result_prompt_tokens(const chorus_result* r, const int32_t** ids) {
  if (!require(r, "chorus_result_prompt_tokens", "result")) return -1;
  if (ids != nullptr) *ids = r->result.prompt_tokens.data();
  return static_cast<int>(r->result.prompt_tokens.size());
}

double chorus_result_total_seconds(const chorus_result* r) {
  return r ? r->result.timings.total_seconds : 0.0;
}

void chorus_result_free(chorus_result* r) { delete r; }

int chorus_result_timings(const chorus_result* r, chorus_timings* out) {
  const char* f = "chorus_result_timings";
  if (!require(r, f, "result") || !require(out, f, "out")) return -1;
  const chorus::Timings& t = r->result.timings;
  chorus_timings full;
  chorus_timings_init(&full);
  full.prompt_tokens = t.prompt_tokens;
  full.prompt_prefills = t.prompt_prefills;
  full.prefill_rows = t.prefill_rows;
  full.generated_tokens = t.generated_tokens;
  full.prompt_seconds = t.prompt_seconds;
  full.suffix_seconds = t.suffix_seconds;
  full.decode_seconds = t.decode_seconds;
  full.total_seconds = t.total_seconds;
  full.kv_bytes_used = t.kv_bytes_used;
  return write_struct(full, out, f, "out") ? 0 : -1;
}

int chorus_result_ds2d(const chorus_result* r, chorus_ds2d_report* out) {
  const char* f = "chorus_result_ds2d";
  if (!require(r, f, "result") || !require(out, f, "out")) return -1;
  const chorus::SpeculationReport& s = r->result.speculation;
  chorus_ds2d_report full;
  chorus_ds2d_report_init(&full);
  full.steps = s.steps;
  full.trees = s.trees;
  full.tau = s.tau;
  full.rows_per_step = s.rows_per_step;
  full.acceptance = s.acceptance.data();
  full.n_acceptance = static_cast<int>(s.acceptance.size());
  full.fallback = s.fallback.c_str();
  return write_struct(full, out, f, "out") ? 0 : -1;
}

int chorus_tokenize(chorus_runtime* rt, const char* text, int add_bos, int32_t* ids, int max_ids) {
  const char* f = "chorus_tokenize";
  if (!require(rt, f, "runtime") || !require(text, f, "text")) return -1;
  if (max_ids < 0 || (max_ids > 0 && ids == nullptr)) {
    set_error(std::string(f) + ": max_ids > 0 needs an ids array, got max_ids = " + std::to_string(max_ids));
    return -1;
  }
  return guarded(-1, [&] {
    const std::vector<int32_t> t = rt->runtime.tokenize(text, add_bos != 0);
    std::copy_n(t.begin(), std::min(t.size(), static_cast<size_t>(max_ids)), ids);
    return static_cast<int>(t.size());
  });
}

char* chorus_detokenize(chorus_runtime* rt, const int32_t* ids, int n) {
  const char* f = "chorus_detokenize";
  if (!require(rt, f, "runtime")) return nullptr;
  if (n < 0 || (n > 0 && ids == nullptr)) {
    set_error(std::string(f) + ": n > 0 needs an ids array, got n = " + std::to_string(n));
    return nullptr;
  }
  return guarded<char*>(nullptr, [&]() -> char* {
    const int n_vocab = rt->info.n_vocab;
    for (int i = 0; i < n; ++i) {
      if (ids[i] < 0 || ids[i] >= n_vocab) {
        throw chorus::Error(f, "id " + std::to_string(ids[i]) + " at " + std::to_string(i) +
                                   " is not in the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
      }
    }
    const std::string text = rt->runtime.detokenize(std::vector<int32_t>(ids, ids + n));
    char* out = static_cast<char*>(std::malloc(text.size() + 1));
    if (out == nullptr) throw std::bad_alloc();
    std::memcpy(out, text.c_str(), text.size() + 1);
    return out;
  });
}

void chorus_free(void* p) { std::free(p); }

char* chorus_chat_format(chorus_runtime* rt, const char* template_choice,
                         const chorus_chat_message* messages, int n_messages,
                         int add_generation_prompt, int* add_bos) {
  const char* f = "chorus_chat_format";
  if (!require(rt, f, "runtime")) return nullptr;
  if (n_messages < 0 || (n_messages > 0 && messages == nullptr)) {
    set_error(std::string(f) + ": n_messages > 0 needs a messages array, got n_messages = " +
              std::to_string(n_messages));
    return nullptr;
  }
  return guarded<char*>(nullptr, [&]() -> char* {
    std::vector<chorus::chat::Message> turns;
    for (int i = 0; i < n_messages; ++i) {
      const std::string where = "messages[" + std::to_string(i) + "]";
      if (messages[i].role == nullptr) throw chorus::Error(where, "role is NULL");
      if (messages[i].content == nullptr) throw chorus::Error(where, "content is NULL");
      turns.push_back({messages[i].role, messages[i].content});
    }
    const chorus::chat::ChatTemplate t = chorus::chat::choose_template(
        template_choice != nullptr ? template_choice : "", rt->info.chat_template);
    chorus::chat::RenderOptions options;
    options.add_generation_prompt = add_generation_prompt != 0;
    options.bos_token = rt->info.bos_token;
    options.eos_token = rt->info.eos_token;
    const chorus::chat::ChatPrompt p = chorus::chat::chat_prompt(t, turns, options);
    char* out = static_cast<char*>(std::malloc(p.text.size() + 1));
    if (out == nullptr) throw std::bad_alloc();
    std::memcpy(out, p.text.c_str(), p.text.size() + 1);
    if (add_bos != nullptr) *add_bos = p.add_bos ? 1 : 0;
    return out;
  });
}

int chorus_runtime_get_info(chorus_runtime* rt, chorus_runtime_info* out) {
  const char* f = "chorus_runtime_get_info";
  if (!require(rt, f, "runtime") || !require(out, f, "out")) return -1;
  return guarded(-1, [&] {
    const chorus::RuntimeInfo i = rt->runtime.info();
    chorus_runtime_info full;
    chorus_runtime_info_init(&full);
    full.model_path = rt->info.model_path.c_str();
    full.n_vocab = i.n_vocab;
    full.trained_context = i.trained_context;
    full.context = i.context;
    full.max_streams = i.max_streams;
    full.adapter_slots = i.adapter_slots;
    full.adapter_max_rank = i.adapter_max_rank;
    full.kernels = rt->info.kernels.c_str();
    full.weight_bytes = i.weight_bytes;
    full.kv_bytes = i.kv_bytes;
    full.load_seconds = i.load_seconds;
    full.pack_seconds = i.pack_seconds;
    full.ds2d = i.speculation ? 1 : 0;
    full.kv_type = rt->info.kv_type.c_str();
    return write_struct(full, out, f, "out") ? 0 : -1;
  });
}

const char* chorus_last_error(void) { return g_last_error.c_str(); }

}  // extern "C"
