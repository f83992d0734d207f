/* The C API from C, linked against libchorus.so: greedy output equals the
 * 100 reference ids, streams and callbacks work, a bundled style adapter
 * loads, gives its own reference ids, rescales and unloads, stop strings
 * stop, DS2D gives the plain output, a generation is cancelled from another
 * thread, tokenize / detokenize / info answer, and every bad input comes
 * back as NULL / -1 with its message. */
#include <pthread.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/chorus_c.h"

static int failures = 0;

#define EXPECT(cond, ...)                                       \
  do {                                                          \
    if (!(cond)) {                                              \
      fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                             \
      fprintf(stderr, "\n");                                    \
      ++failures;                                               \
    }                                                           \
  } while (0)

/* Reads the ids after "NAME: " on the line of path that starts so (lines
 * starting with '#' are comments) into ids; returns how many, -1 if no line. */
static int read_named_ids(const char* path, const char* name, int* ids, int max) {
  FILE* f = fopen(path, "r");
  if (f == NULL) return -1;
  char line[8192];
  const size_t len = strlen(name);
  int n = -1;
  while (n < 0 && fgets(line, sizeof line, f) != NULL) {
    if (line[0] == '#' || strncmp(line, name, len) != 0 || line[len] != ':') continue;
    n = 0;
    char* p = line + len + 1;
    char* end = NULL;
    for (long v = strtol(p, &end, 10); end != p && n < max; v = strtol(p, &end, 10)) {
      ids[n++] = (int)v;
      p = end;
    }
  }
  fclose(f);
  return n;
}

/* The call failed and chorus_last_error() names the problem. */
#define EXPECT_ERROR(failed, words)                                              \
  do {                                                                           \
    EXPECT(failed, "must fail");                                                 \
    EXPECT(strstr(chorus_last_error(), words) != NULL, "error was '%s', want '%s'", \
           chorus_last_error(), words);                                          \
  } while (0)

/* Counts tokens per stream; the last call with token -1 only hands over
 * text that was held back, and is no token. */
static int count_tokens(void* user, int stream, int32_t token, const char* piece, size_t len) {
  (void)piece;
  (void)len;
  int* counts = (int*)user;
  if (token >= 0 && stream >= 0 && stream < 2) counts[stream]++;
  return 1;
}

static int reference[128];  /* the first 100 greedy ids from BOS */
static int dog_reference[128];

static int same_ids(const int32_t* ids, const int* ref, int n) {
  for (int i = 0; i < n; ++i) {
    if (ids[i] != ref[i]) return 0;
  }
  return 1;
}

/* Greedy, n tokens, EOS ignored, from BOS (prompt "") or a prompt. */
static void greedy(chorus_request* req, const char* prompt, int n) {
  chorus_request_init(req);
  req->prompt = prompt;
  req->n_predict = n;
  req->ignore_eos = 1;
  req->temperature = 0.0f;
}

/* Cancellation from another thread: the callback holds the generation at
 * its first token until the other thread's chorus_cancel has returned. */
typedef struct {
  chorus_runtime* rt;
  atomic_int started;
  atomic_int cancelled;
} cancel_state;

static int hold_until_cancelled(void* user, int stream, int32_t token, const char* piece, size_t len) {
  (void)stream, (void)token, (void)piece, (void)len;
  cancel_state* s = (cancel_state*)user;
  atomic_store(&s->started, 1);
  while (!atomic_load(&s->cancelled)) {
  }
  return 1;
}

static void* cancel_when_started(void* user) {
  cancel_state* s = (cancel_state*)user;
  while (!atomic_load(&s->started)) {
  }
  if (chorus_cancel(s->rt) != 0) fprintf(stderr, "chorus_cancel failed: %s\n", chorus_last_error());
  atomic_store(&s->cancelled, 1);
  return NULL;
}

static void test_errors(chorus_runtime* rt, const char* model) {
  chorus_runtime_options opt;
  chorus_runtime_options_init(&opt);
  EXPECT_ERROR(chorus_runtime_open("/nonexistent/model.gguf", NULL) == NULL, "/nonexistent/model.gguf");
  EXPECT_ERROR(chorus_runtime_open(NULL, NULL) == NULL, "chorus_runtime_open: model_path is NULL");
  opt.struct_size = 0;
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "options.struct_size is 0 (call its _init function first)");
  chorus_runtime_options_init(&opt);
  opt.threads = 0;
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "threads: must be 1..256, got 0");
  chorus_runtime_options_init(&opt);
  opt.context = 1000000;
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "context: must be 0 (default) or 1..");
  chorus_runtime_options_init(&opt);
  opt.weights = "int3";
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "weights: unknown format 'int3'");
  chorus_runtime_options_init(&opt);
  opt.ds2d = "maybe";
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "ds2d: must be off, on or auto, got 'maybe'");
  chorus_runtime_options_init(&opt);
  opt.kv_type = "q8";
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "kv_type: unknown KV cache type 'q8' (expected f16 or f32)");
  chorus_runtime_options_init(&opt);
  opt.ds2d = "on";
  opt.ds2d_budget = 100000;
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "ds2d budget: must be 1..256, got 100000");
  chorus_runtime_options_init(&opt);
  const char* forecasts[1] = {"/nonexistent/forecast.gguf"};
  opt.ds2d_forecasts = forecasts;
  opt.n_ds2d_forecasts = 1;
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "ds2d_forecasts: needs ds2d on or auto");
  opt.ds2d = "on";
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "/nonexistent/forecast.gguf");
  opt.n_ds2d_forecasts = 2;
  opt.ds2d_forecasts = NULL;
  EXPECT_ERROR(chorus_runtime_open(model, &opt) == NULL, "ds2d_forecasts: n > 0 needs an array, got n = 2 and NULL");

  EXPECT_ERROR(chorus_load_adapter(NULL, "x", "y", 1.0f) == -1, "chorus_load_adapter: runtime is NULL");
  EXPECT_ERROR(chorus_load_adapter(rt, NULL, "y", 1.0f) == -1, "chorus_load_adapter: name is NULL");
  EXPECT_ERROR(chorus_load_adapter(rt, "x", NULL, 1.0f) == -1, "chorus_load_adapter: path is NULL");
  EXPECT_ERROR(chorus_load_adapter(rt, "x", "/nonexistent/adapter.gguf", 1.0f) == -1,
               "/nonexistent/adapter.gguf");
  EXPECT_ERROR(chorus_load_adapter(rt, "x", "y", INFINITY) == -1, "chorus_load_adapter: scale must be finite");
  EXPECT_ERROR(chorus_unload_adapter(rt, "nope") == -1, "no adapter named 'nope'");
  EXPECT_ERROR(chorus_unload_adapter(rt, NULL) == -1, "chorus_unload_adapter: name is NULL");
  EXPECT_ERROR(chorus_set_adapter_scale(rt, "nope", 1.0f) == -1, "no adapter named 'nope'");
  EXPECT_ERROR(chorus_set_adapter_scale(NULL, "x", 1.0f) == -1, "chorus_set_adapter_scale: runtime is NULL");
  EXPECT_ERROR(chorus_adapter_name(rt, 5) == NULL, "chorus_adapter_name: no adapter 5");
  EXPECT_ERROR(chorus_adapter_count(NULL) == -1, "chorus_adapter_count: runtime is NULL");

  chorus_request req;
  greedy(&req, "x", 4);
  EXPECT_ERROR(chorus_generate(NULL, &req, NULL, NULL) == NULL, "chorus_generate: runtime is NULL");
  EXPECT_ERROR(chorus_generate(rt, NULL, NULL, NULL) == NULL, "chorus_generate: request is NULL");
  req.prompt = NULL;
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL, "chorus_generate: request.prompt is NULL");
  req.prompt = "x";
  req.struct_size = 3;
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL, "request.struct_size is 3");
  greedy(&req, "", 4);
  req.add_bos = 0;
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL, "prompt: is empty and no BOS token is added");
  greedy(&req, "x", -2);
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL, "n_predict: must be -1");
  greedy(&req, "x", 4);
  req.n_streams = 2;
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL,
               "request.streams: n_streams > 0 needs an array, got n_streams = 2");
  chorus_stream_options streams[100];
  for (int i = 0; i < 100; ++i) chorus_stream_options_init(&streams[i]);
  req.streams = streams;
  req.n_streams = 100;
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL, "streams");
  req.n_streams = 2;
  streams[1].adapter = "missing";
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL, "no adapter named 'missing'");
  streams[1].adapter = NULL;
  streams[1].struct_size = 8;
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL,
               "request.streams[1]: struct_size differs from streams[0]'s");
  streams[1].struct_size = streams[0].struct_size;
  const char* stops[2] = {"a", NULL};
  req.stop = stops;
  req.n_stop = 2;
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL, "request.stop: entry 1 is NULL");
  req.n_stop = -1;
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL, "request.stop: n > 0 needs an array, got n = -1");

  EXPECT_ERROR(chorus_result_stream_count(NULL) == -1, "chorus_result_stream_count: result is NULL");
  EXPECT_ERROR(chorus_result_text(NULL, 0) == NULL, "chorus_result_text: result is NULL");
  EXPECT_ERROR(chorus_result_tokens(NULL, 0, NULL) == -1, "chorus_result_tokens: result is NULL");
  EXPECT_ERROR(chorus_result_ds2d(NULL, NULL) == -1, "chorus_result_ds2d: result is NULL");
  EXPECT_ERROR(chorus_result_timings(NULL, NULL) == -1, "chorus_result_timings: result is NULL");
  EXPECT_ERROR(chorus_cancel(NULL) == -1, "chorus_cancel: runtime is NULL");

  int32_t ids[4];
  EXPECT_ERROR(chorus_tokenize(rt, NULL, 1, ids, 4) == -1, "chorus_tokenize: text is NULL");
  EXPECT_ERROR(chorus_tokenize(rt, "x", 1, NULL, 4) == -1, "chorus_tokenize: max_ids > 0 needs an ids array");
  const int32_t bad_ids[2] = {1, 100000};
  EXPECT_ERROR(chorus_detokenize(rt, bad_ids, 2) == NULL,
               "chorus_detokenize: id 100000 at 1 is not in the vocabulary (0..511)");
  EXPECT_ERROR(chorus_detokenize(rt, NULL, 2) == NULL, "chorus_detokenize: n > 0 needs an ids array, got n = 2");
  chorus_runtime_info info;
  chorus_runtime_info_init(&info);
  info.struct_size = 0;
  EXPECT_ERROR(chorus_runtime_get_info(rt, &info) == -1, "out->struct_size is 0");
  EXPECT_ERROR(chorus_runtime_get_info(rt, NULL) == -1, "chorus_runtime_get_info: out is NULL");
}

/* Plain greedy decoding: stream 0 (rank 0) gives the reference ids, stream 1
 * (rank 1) another first token; the callback sees every token. */
static void test_streams(chorus_runtime* rt) {
  chorus_stream_options streams[2];
  chorus_stream_options_init(&streams[0]);
  chorus_stream_options_init(&streams[1]);
  streams[0].first_token_rank = 0;
  streams[1].first_token_rank = 1;
  chorus_request req;
  greedy(&req, "", 100);
  req.streams = streams;
  req.n_streams = 2;
  int counts[2] = {0, 0};
  chorus_result* res = chorus_generate(rt, &req, count_tokens, counts);
  EXPECT(res != NULL, "generate: %s", chorus_last_error());
  if (res == NULL) return;
  EXPECT(chorus_result_stream_count(res) == 2, "streams: %d", chorus_result_stream_count(res));
  const int32_t* ids = NULL;
  const int n = chorus_result_tokens(res, 0, &ids);
  EXPECT(n == 100 && same_ids(ids, reference, 100), "stream 0: %d tokens, not the reference ids", n);
  const int32_t* ids1 = NULL;
  EXPECT(chorus_result_tokens(res, 1, &ids1) == 100 && ids1[0] != ids[0],
         "stream 1 must start with another token");
  EXPECT(counts[0] == 100 && counts[1] == 100, "callback counts %d %d", counts[0], counts[1]);
  EXPECT(strcmp(chorus_result_finish_reason(res, 0), "length") == 0, "finish %s",
         chorus_result_finish_reason(res, 0));
  EXPECT(strcmp(chorus_result_adapter(res, 0), "") == 0, "adapter '%s'", chorus_result_adapter(res, 0));
  EXPECT(strlen(chorus_result_text(res, 0)) > 0, "empty text");
  const int32_t* prompt = NULL;
  EXPECT(chorus_result_prompt_tokens(res, &prompt) == 1 && prompt[0] == 1, "prompt: BOS alone");
  chorus_timings t;
  chorus_timings_init(&t);
  EXPECT(chorus_result_timings(res, &t) == 0 && t.generated_tokens == 200 && t.total_seconds > 0,
         "timings: %d tokens", t.generated_tokens);
  /* The text of stream 0 is the detokenized reference. */
  char* text = chorus_detokenize(rt, ids, n);
  EXPECT(text != NULL && strcmp(text, chorus_result_text(res, 0)) == 0, "detokenize: %s",
         text ? text : chorus_last_error());
  chorus_free(text);
  EXPECT_ERROR(chorus_result_text(res, 7) == NULL, "chorus_result_text: no stream 7 (the result has 2)");
  chorus_result_free(res);

  /* One stream with a seed of its own repeats; the request seed moves stream 1. */
  chorus_request sampled;
  chorus_request_init(&sampled);
  sampled.prompt = "Once upon a time";
  sampled.n_predict = 30;
  sampled.temperature = 0.9f;
  chorus_stream_options_init(&streams[0]);
  chorus_stream_options_init(&streams[1]);
  streams[0].has_seed = 1;
  streams[0].seed = 11;
  streams[1].suffix = " there was a dog";
  sampled.streams = streams;
  sampled.n_streams = 2;
  chorus_result* a = chorus_generate(rt, &sampled, NULL, NULL);
  sampled.seed = 5;
  chorus_result* b = chorus_generate(rt, &sampled, NULL, NULL);
  EXPECT(a != NULL && b != NULL, "sampled: %s", chorus_last_error());
  if (a != NULL && b != NULL) {
    EXPECT(strcmp(chorus_result_text(a, 0), chorus_result_text(b, 0)) == 0, "own seed must repeat");
    EXPECT(strcmp(chorus_result_text(a, 1), chorus_result_text(b, 1)) != 0, "request seed must move stream 1");
  }
  chorus_result_free(a);
  chorus_result_free(b);
}

/* A stop string from the reference text stops stream 0 before it. */
static void test_stop(chorus_runtime* rt) {
  const int32_t later[2] = {reference[20], reference[21]};
  char* stop = chorus_detokenize(rt, later, 2);
  EXPECT(stop != NULL && strlen(stop) > 0, "detokenize: %s", chorus_last_error());
  if (stop == NULL) return;
  chorus_request req;
  greedy(&req, "", 100);
  const char* stops[1] = {stop};
  req.stop = stops;
  req.n_stop = 1;
  chorus_result* res = chorus_generate(rt, &req, NULL, NULL);
  EXPECT(res != NULL, "generate with stop: %s", chorus_last_error());
  if (res != NULL) {
    const int32_t* ids = NULL;
    const int n = chorus_result_tokens(res, 0, &ids);
    EXPECT(strcmp(chorus_result_finish_reason(res, 0), "stop") == 0, "finish %s (stop '%s')",
           chorus_result_finish_reason(res, 0), stop);
    EXPECT(n <= 22 && same_ids(ids, reference, n), "%d tokens before the stop string", n);
    /* The text ends right before the first occurrence of the stop string. */
    chorus_request plain;
    greedy(&plain, "", 100);
    chorus_result* all = chorus_generate(rt, &plain, NULL, NULL);
    EXPECT(all != NULL, "generate: %s", chorus_last_error());
    if (all != NULL) {
      const char* text = chorus_result_text(res, 0);
      const char* whole = chorus_result_text(all, 0);
      const char* at = strstr(whole, stop);
      EXPECT(at != NULL && strlen(text) == (size_t)(at - whole) && strncmp(text, whole, strlen(text)) == 0,
             "text '%s' should be the reference text up to '%s'", text, stop);
      chorus_result_free(all);
    }
    chorus_result_free(res);
  }
  chorus_free(stop);
}

static void test_adapter(chorus_runtime* rt, const char* dog) {
  EXPECT(chorus_load_adapter(rt, "dog", dog, 1.0f) == 0, "load dog: %s", chorus_last_error());
  EXPECT_ERROR(chorus_load_adapter(rt, "dog", dog, 1.0f) == -1, "dog: an adapter of this name is already loaded");
  EXPECT(chorus_adapter_count(rt) == 1 && strcmp(chorus_adapter_name(rt, 0), "dog") == 0,
         "adapters: %d", chorus_adapter_count(rt));
  chorus_stream_options styled[2];
  chorus_stream_options_init(&styled[0]);
  chorus_stream_options_init(&styled[1]);
  styled[0].adapter = "dog";
  chorus_request req;
  greedy(&req, "Once upon a time", 100);
  req.streams = styled;
  req.n_streams = 2;
  chorus_result* res = chorus_generate(rt, &req, NULL, NULL);
  EXPECT(res != NULL, "generate with dog: %s", chorus_last_error());
  if (res != NULL) {
    const int32_t* ids = NULL;
    const int n = chorus_result_tokens(res, 0, &ids);
    EXPECT(n == 100 && same_ids(ids, dog_reference, 100), "dog stream: %d tokens, not its reference ids", n);
    EXPECT(strcmp(chorus_result_adapter(res, 0), "dog") == 0, "adapter %s", chorus_result_adapter(res, 0));
    const int32_t* base = NULL;
    EXPECT(chorus_result_tokens(res, 1, &base) == 100 && !same_ids(base, dog_reference, 100),
           "the base-model stream gave the dog adapter's ids");
    chorus_result_free(res);
  }
  /* Scale 0 turns the adapter off: its stream gives the base model's ids. */
  EXPECT(chorus_set_adapter_scale(rt, "dog", 0.0f) == 0, "scale: %s", chorus_last_error());
  res = chorus_generate(rt, &req, NULL, NULL);
  EXPECT(res != NULL, "generate with dog at scale 0: %s", chorus_last_error());
  if (res != NULL) {
    const int32_t *a = NULL, *b = NULL;
    EXPECT(chorus_result_tokens(res, 0, &a) == 100 && chorus_result_tokens(res, 1, &b) == 100 &&
               memcmp(a, b, 100 * sizeof *a) == 0,
           "dog at scale 0 must decode as the base model");
    chorus_result_free(res);
  }
  EXPECT(chorus_unload_adapter(rt, "dog") == 0, "unload dog: %s", chorus_last_error());
  EXPECT(chorus_adapter_count(rt) == 0, "adapters after unload: %d", chorus_adapter_count(rt));
  EXPECT_ERROR(chorus_generate(rt, &req, NULL, NULL) == NULL, "no adapter named 'dog'");
}

/* DS2D on a runtime of its own: greedy streams (base and dog) give the ids
 * plain decoding gives, with a report; speculate = 0 decodes plainly; "auto"
 * with a budget that cannot fit falls back and says why. */
static void test_ds2d(const char* model, const char* dog, const char* forecast, const char* dog_forecast) {
  chorus_runtime_options opt;
  chorus_runtime_options_init(&opt);
  opt.context = 256;
  opt.adapter_slots = 1;
  opt.adapter_max_rank = 8;
  opt.ds2d = "on";
  const char* forecasts[2] = {forecast, dog_forecast};
  opt.ds2d_forecasts = forecasts;
  opt.n_ds2d_forecasts = 2;
  opt.ds2d_row_cost = 0.0f;
  chorus_runtime* rt = chorus_runtime_open(model, &opt);
  EXPECT(rt != NULL, "open with ds2d: %s", chorus_last_error());
  if (rt == NULL) return;
  chorus_runtime_info info;
  chorus_runtime_info_init(&info);
  EXPECT(chorus_runtime_get_info(rt, &info) == 0 && info.ds2d == 1, "info.ds2d %d", info.ds2d);
  EXPECT(chorus_load_adapter(rt, "dog", dog, 1.0f) == 0, "load dog: %s", chorus_last_error());
  chorus_stream_options streams[2];
  chorus_stream_options_init(&streams[0]);
  chorus_stream_options_init(&streams[1]);
  streams[1].adapter = "dog";
  chorus_request req;
  greedy(&req, "Once upon a time", 100);
  req.streams = streams;
  req.n_streams = 2;
  chorus_result* spec = chorus_generate(rt, &req, NULL, NULL);
  req.speculate = 0;
  chorus_result* plain = chorus_generate(rt, &req, NULL, NULL);
  EXPECT(spec != NULL && plain != NULL, "ds2d generate: %s", chorus_last_error());
  if (spec != NULL && plain != NULL) {
    for (int s = 0; s < 2; ++s) {
      const int32_t *a = NULL, *b = NULL;
      const int na = chorus_result_tokens(spec, s, &a);
      const int nb = chorus_result_tokens(plain, s, &b);
      EXPECT(na == 100 && nb == 100 && memcmp(a, b, 100 * sizeof *a) == 0, "stream %d: ds2d differs from plain", s);
    }
    const int32_t* dog_ids = NULL;
    chorus_result_tokens(spec, 1, &dog_ids);
    EXPECT(same_ids(dog_ids, dog_reference, 100), "ds2d dog stream: not the dog reference ids");
    chorus_ds2d_report r;
    chorus_ds2d_report_init(&r);
    EXPECT(chorus_result_ds2d(spec, &r) == 0, "report: %s", chorus_last_error());
    EXPECT(r.trees > 0 && r.steps > 0 && r.tau > 1.0 && r.n_acceptance > 0 && r.acceptance[0] > 0.0 &&
               strcmp(r.fallback, "") == 0,
           "report: steps %lld trees %lld tau %.2f depths %d", (long long)r.steps, (long long)r.trees,
           r.tau, r.n_acceptance);
    printf("c_api: ds2d tau %.2f over %lld trees, acceptance at depth 1 %.2f\n", r.tau, (long long)r.trees,
           r.n_acceptance > 0 ? r.acceptance[0] : 0.0);
    chorus_ds2d_report_init(&r);
    EXPECT(chorus_result_ds2d(plain, &r) == 0 && r.trees == 0 && r.n_acceptance == 0,
           "speculate = 0 must decode plainly: %lld trees", (long long)r.trees);
  }
  chorus_result_free(spec);
  chorus_result_free(plain);
  chorus_runtime_close(rt);

  chorus_runtime_options_init(&opt);
  opt.context = 256;
  opt.ds2d = "auto";
  opt.ds2d_budget = 100000;
  rt = chorus_runtime_open(model, &opt);
  EXPECT(rt != NULL, "ds2d auto must fall back, not fail: %s", chorus_last_error());
  if (rt == NULL) return;
  greedy(&req, "", 20);
  chorus_result* res = chorus_generate(rt, &req, NULL, NULL);
  EXPECT(res != NULL, "generate: %s", chorus_last_error());
  if (res != NULL) {
    chorus_ds2d_report r;
    chorus_ds2d_report_init(&r);
    EXPECT(chorus_result_ds2d(res, &r) == 0 && strstr(r.fallback, "ds2d budget: must be 1..256") != NULL,
           "fallback '%s'", r.fallback);
    const int32_t* ids = NULL;
    EXPECT(chorus_result_tokens(res, 0, &ids) == 20 && same_ids(ids, reference, 20), "fallback output");
    chorus_result_free(res);
  }
  chorus_runtime_close(rt);
}

static void test_cancel(chorus_runtime* rt) {
  /* A cancel while nothing runs is ignored. */
  EXPECT(chorus_cancel(rt) == 0, "cancel: %s", chorus_last_error());
  chorus_request req;
  greedy(&req, "", 50);
  chorus_result* res = chorus_generate(rt, &req, NULL, NULL);
  EXPECT(res != NULL && chorus_result_tokens(res, 0, NULL) == 50, "a stale cancel stopped a generation");
  chorus_result_free(res);

  chorus_stream_options streams[2];
  chorus_stream_options_init(&streams[0]);
  chorus_stream_options_init(&streams[1]);
  greedy(&req, "", -1);  /* as many tokens as the context holds */
  req.streams = streams;
  req.n_streams = 2;
  cancel_state state;
  state.rt = rt;
  atomic_init(&state.started, 0);
  atomic_init(&state.cancelled, 0);
  pthread_t canceller;
  EXPECT(pthread_create(&canceller, NULL, cancel_when_started, &state) == 0, "pthread_create");
  res = chorus_generate(rt, &req, hold_until_cancelled, &state);
  pthread_join(canceller, NULL);
  EXPECT(res != NULL, "generate: %s", chorus_last_error());
  if (res == NULL) return;
  printf("c_api: cancelled after %d and %d tokens\n", chorus_result_tokens(res, 0, NULL),
         chorus_result_tokens(res, 1, NULL));
  for (int s = 0; s < 2; ++s) {
    const int n = chorus_result_tokens(res, s, NULL);
    EXPECT(strcmp(chorus_result_finish_reason(res, s), "cancelled") == 0 && n >= 1 && n <= 2,
           "stream %d: finish %s after %d tokens", s, chorus_result_finish_reason(res, s), n);
  }
  chorus_result_free(res);
}

/* Chat formatting: stories260K carries no template, so one is named; the
 * text is what the real template renders (see tests/data/chat_templates). */
static void test_chat(chorus_runtime* rt) {
  const chorus_chat_message conversation[2] = {{"system", "Tell a story."}, {"user", "Once upon a time"}};
  int add_bos = -1;
  EXPECT_ERROR(chorus_chat_format(rt, NULL, conversation, 2, 1, &add_bos) == NULL,
               "the model has no chat template (tokenizer.chat_template); pass --chat-template NAME");
  char* text = chorus_chat_format(rt, "chatml", conversation, 2, 1, &add_bos);
  EXPECT(text != NULL && strcmp(text,
                                "<|im_start|>system\nTell a story.<|im_end|>\n<|im_start|>user\n"
                                "Once upon a time<|im_end|>\n<|im_start|>assistant\n") == 0 &&
             add_bos == 1,
         "chatml: '%s' add_bos %d", text ? text : chorus_last_error(), add_bos);
  chorus_free(text);
  text = chorus_chat_format(rt, "llama2", conversation + 1, 1, 1, &add_bos);
  EXPECT(text != NULL && strcmp(text, "<s>[INST] Once upon a time [/INST]") == 0 && add_bos == 0,
         "llama2 writes BOS itself: '%s' add_bos %d", text ? text : chorus_last_error(), add_bos);
  if (text != NULL) {
    /* Generated with parse_special, the template's "<s>" is the BOS token. */
    chorus_request req;
    greedy(&req, text, 4);
    req.add_bos = add_bos;
    req.parse_special = 1;
    chorus_result* res = chorus_generate(rt, &req, NULL, NULL);
    EXPECT(res != NULL, "generate the chat: %s", chorus_last_error());
    if (res != NULL) {
      const int32_t* ids = NULL;
      const int n = chorus_result_prompt_tokens(res, &ids);
      EXPECT(n > 1 && ids[0] == 1 && ids[1] != 1, "one BOS token first, got %d tokens", n);
      chorus_result_free(res);
    }
  }
  chorus_free(text);
  EXPECT_ERROR(chorus_chat_format(rt, "gemma", conversation, 2, 1, NULL) == NULL, "System role not supported");
  EXPECT_ERROR(chorus_chat_format(rt, "no-such", conversation, 2, 1, NULL) == NULL,
               "'no-such' is neither a template name (one of: chatml");
  const chorus_chat_message no_role[1] = {{NULL, "x"}};
  EXPECT_ERROR(chorus_chat_format(rt, "chatml", no_role, 1, 1, NULL) == NULL, "messages[0]: role is NULL");
  EXPECT_ERROR(chorus_chat_format(rt, "chatml", NULL, 2, 1, NULL) == NULL,
               "chorus_chat_format: n_messages > 0 needs a messages array");
}

static void test_tokens_and_info(chorus_runtime* rt, const char* model) {
  int32_t ids[8];
  const int32_t want[5] = {1, 403, 407, 261, 378};
  EXPECT(chorus_tokenize(rt, "Once upon a time", 1, ids, 8) == 5 && memcmp(ids, want, sizeof want) == 0,
         "tokenize: %s", chorus_last_error());
  int32_t two[2] = {0, 0};
  EXPECT(chorus_tokenize(rt, "Once upon a time", 1, two, 2) == 5 && two[0] == 1 && two[1] == 403,
         "tokenize into a short array: the count and the first ids");
  EXPECT(chorus_tokenize(rt, "Once upon a time", 0, NULL, 0) == 4, "count only, no BOS");
  char* text = chorus_detokenize(rt, want, 5);
  EXPECT(text != NULL && strcmp(text, "Once upon a time") == 0, "detokenize: '%s'", text ? text : chorus_last_error());
  chorus_free(text);

  chorus_runtime_info info;
  chorus_runtime_info_init(&info);
  EXPECT(chorus_runtime_get_info(rt, &info) == 0, "info: %s", chorus_last_error());
  EXPECT(strcmp(info.model_path, model) == 0 && info.n_vocab == 512 && info.context == 256 &&
             info.adapter_slots == 1 && info.adapter_max_rank == 8 && info.kernels != NULL &&
             strlen(info.kernels) > 0 && info.weight_bytes > 0 && info.ds2d == 0 && info.kv_type != NULL &&
             strcmp(info.kv_type, "f16") == 0,
         "info: %s vocab %d context %d kernels %s", info.model_path, info.n_vocab, info.context,
         info.kernels ? info.kernels : "(null)");
  /* A caller whose header ends at kernels: nothing past it is written. */
  chorus_runtime_info old;
  memset(&old, 0x5a, sizeof old);
  old.struct_size = offsetof(chorus_runtime_info, weight_bytes);
  EXPECT(chorus_runtime_get_info(rt, &old) == 0 && strcmp(old.kernels, info.kernels) == 0 &&
             old.struct_size == offsetof(chorus_runtime_info, weight_bytes) && old.ds2d == 0x5a5a5a5a,
         "a shorter struct_size must bound what is written");
  EXPECT(strcmp(chorus_version(), "0.1.0") == 0, "version %s", chorus_version());
  printf("c_api: kernels %s\n", info.kernels);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SOURCE_DIR\n", argv[0]);
    return 2;
  }
  char model[4096], ids_path[4096], dog[4096], dog_ids_path[4096], forecast[4096], dog_forecast[4096];
  snprintf(model, sizeof model, "%s/models/stories260K.gguf", argv[1]);
  snprintf(ids_path, sizeof ids_path, "%s/tests/data/stories260K_greedy_ids.txt", argv[1]);
  snprintf(dog, sizeof dog, "%s/models/adapters/dog.gguf", argv[1]);
  snprintf(dog_ids_path, sizeof dog_ids_path, "%s/tests/data/style_adapters_greedy_ids.txt", argv[1]);
  snprintf(forecast, sizeof forecast, "%s/models/stories260K.forecast-lora.gguf", argv[1]);
  snprintf(dog_forecast, sizeof dog_forecast, "%s/models/adapters/dog.forecast.gguf", argv[1]);

  /* The first 100 greedy ids from BOS; the file holds exactly those. */
  int n_reference = 0;
  FILE* f = fopen(ids_path, "r");
  EXPECT(f != NULL, "cannot open %s", ids_path);
  if (f == NULL) return 1;
  while (n_reference < 128 && fscanf(f, "%d", &reference[n_reference]) == 1) ++n_reference;
  fclose(f);
  EXPECT(n_reference == 100, "%s holds %d ids, want 100", ids_path, n_reference);
  /* The dog adapter's 100 greedy ids after "Once upon a time". */
  const int n_dog = read_named_ids(dog_ids_path, "dog", dog_reference, 128);
  EXPECT(n_dog == 100, "%s holds %d ids for dog, want 100", dog_ids_path, n_dog);
  if (n_reference != 100 || n_dog != 100) return 1;

  chorus_runtime_options opt;
  chorus_runtime_options_init(&opt);
  opt.context = 256;
  opt.adapter_slots = 1;
  opt.adapter_max_rank = 8;
  chorus_runtime* rt = chorus_runtime_open(model, &opt);
  EXPECT(rt != NULL, "open: %s", chorus_last_error());
  if (rt == NULL) return 1;

  test_streams(rt);
  test_stop(rt);
  test_adapter(rt, dog);
  test_cancel(rt);
  test_tokens_and_info(rt, model);
  test_chat(rt);
  test_errors(rt, model);
  chorus_runtime_close(rt);
  test_ds2d(model, dog, forecast, dog_forecast);

  if (failures == 0) printf("c_api: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
