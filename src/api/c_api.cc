// The C API (include/chorus/chorus_c.h) over the C++ Runtime: every entry
// point catches everything, so no exception crosses into C.
#include "chorus/chorus_c.h"

#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "chorus/chorus.h"

struct chorus_runtime {
  chorus::Runtime runtime;
};

struct chorus_result {
  chorus::Result result;
};

namespace {

thread_local std::string g_last_error;

void set_error(const char* what) { g_last_error = what ? what : "unknown error"; }

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

bool require(const void* p, const char* what) {
  if (p != nullptr) return true;
  set_error(what);
  return false;
}

const chorus::StreamResult* stream_of(const chorus_result* r, int stream) {
  if (r == nullptr || stream < 0 || stream >= static_cast<int>(r->result.streams.size())) {
    set_error("chorus_result: no such stream");
    return nullptr;
  }
  return &r->result.streams[static_cast<size_t>(stream)];
}

}  // namespace

extern "C" {

void chorus_runtime_options_init(chorus_runtime_options* o) {
  if (o == nullptr) return;
  const chorus::RuntimeOptions d;
  *o = chorus_runtime_options{nullptr, d.threads, d.context, d.max_streams, d.adapter_slots,
                              d.adapter_max_rank, nullptr};
}

void chorus_stream_options_init(chorus_stream_options* o) {
  if (o == nullptr) return;
  *o = chorus_stream_options{nullptr, nullptr, 0, 0, -1};
}

void chorus_request_init(chorus_request* r) {
  if (r == nullptr) return;
  const chorus::Request d;
  *r = chorus_request{nullptr,           d.add_bos ? 1 : 0,          d.n_predict,
                      0,                 d.sampling.temperature,     d.sampling.top_k,
                      d.sampling.top_p,  d.sampling.min_p,           d.sampling.repeat_penalty,
                      d.sampling.seed,   nullptr,                    0};
}

chorus_runtime* chorus_runtime_open(const char* model_path, const chorus_runtime_options* o) {
  if (!require(model_path, "chorus_runtime_open: model_path is NULL")) return nullptr;
  return guarded<chorus_runtime*>(nullptr, [&] {
    chorus::RuntimeOptions opt;
    if (o != nullptr) {
      if (o->tokenizer != nullptr) opt.tokenizer = o->tokenizer;
      opt.threads = o->threads;
      opt.context = o->context;
      opt.max_streams = o->max_streams;
      opt.adapter_slots = o->adapter_slots;
      opt.adapter_max_rank = o->adapter_max_rank;
      if (o->weights != nullptr) opt.weights = o->weights;
    }
    return new chorus_runtime{chorus::Runtime(model_path, opt)};
  });
}

void chorus_runtime_close(chorus_runtime* runtime) { delete runtime; }

int chorus_load_adapter(chorus_runtime* rt, const char* name, const char* path, float scale) {
  if (!require(rt, "chorus_load_adapter: runtime is NULL") ||
      !require(name, "chorus_load_adapter: name is NULL") ||
      !require(path, "chorus_load_adapter: path is NULL")) {
    return -1;
  }
  return guarded(-1, [&] {
    rt->runtime.load_adapter(name, path, scale);
    return 0;
  });
}

int chorus_unload_adapter(chorus_runtime* rt, const char* name) {
  if (!require(rt, "chorus_unload_adapter: runtime is NULL") ||
      !require(name, "chorus_unload_adapter: name is NULL")) {
    return -1;
  }
  return guarded(-1, [&] {
    rt->runtime.unload_adapter(name);
    return 0;
  });
}

chorus_result* chorus_generate(chorus_runtime* rt, const chorus_request* r,
                               chorus_token_callback on_token, void* user_data) {
  if (!require(rt, "chorus_generate: runtime is NULL") ||
      !require(r, "chorus_generate: request is NULL") ||
      !require(r->prompt, "chorus_generate: request.prompt is NULL")) {
    return nullptr;
  }
  if (r->n_streams < 0 || (r->n_streams > 0 && r->streams == nullptr)) {
    set_error("chorus_generate: n_streams > 0 needs a streams array");
    return nullptr;
  }
  return guarded<chorus_result*>(nullptr, [&] {
    chorus::Request req;
    req.prompt = r->prompt;
    req.add_bos = r->add_bos != 0;
    req.n_predict = r->n_predict;
    req.ignore_eos = r->ignore_eos != 0;
    req.sampling.temperature = r->temperature;
    req.sampling.top_k = r->top_k;
    req.sampling.top_p = r->top_p;
    req.sampling.min_p = r->min_p;
    req.sampling.repeat_penalty = r->repeat_penalty;
    req.sampling.seed = r->seed;
    for (int i = 0; i < r->n_streams; ++i) {
      const chorus_stream_options& s = r->streams[i];
      chorus::StreamOptions so;
      if (s.adapter != nullptr) so.adapter = s.adapter;
      if (s.suffix != nullptr) so.suffix = s.suffix;
      if (s.has_seed) so.seed = s.seed;
      so.first_token_rank = s.first_token_rank;
      req.streams.push_back(std::move(so));
    }
    chorus::TokenCallback callback;
    if (on_token != nullptr) {
      callback = [on_token, user_data](int stream, int32_t token, std::string_view piece) {
        return on_token(user_data, stream, token, piece.data(), piece.size()) != 0;
      };
    }
    auto out = std::make_unique<chorus_result>();
    out->result = rt->runtime.generate(req, callback);
    return out.release();
  });
}

int chorus_result_stream_count(const chorus_result* r) {
  if (!require(r, "chorus_result_stream_count: result is NULL")) return -1;
  return static_cast<int>(r->result.streams.size());
}

const char* chorus_result_text(const chorus_result* r, int stream) {
  const chorus::StreamResult* s = stream_of(r, stream);
  return s ? s->text.c_str() : nullptr;
}

const char* chorus_result_finish_reason(const chorus_result* r, int stream) {
  const chorus::StreamResult* s = stream_of(r, stream);
  return s ? chorus::to_string(s->finish) : nullptr;
}

int chorus_result_tokens(const chorus_result* r, int stream, const int32_t** ids) {
  const chorus::StreamResult* s = stream_of(r, stream);
  if (s == nullptr) return -1;
  if (ids != nullptr) *ids = s->tokens.data();
  return static_cast<int>(s->tokens.size());
}

double chorus_result_total_seconds(const chorus_result* r) {
  return r ? r->result.timings.total_seconds : 0.0;
}

void chorus_result_free(chorus_result* r) { delete r; }

const char* chorus_last_error(void) { return g_last_error.c_str(); }

}  // extern "C"
