/* chorus: the C API, for embedding in apps (JNI, Swift, ...).
 *
 * A thin layer over the C++ API in chorus.h: one runtime holds one frozen
 * model and a fixed pool of LoRA adapter slots; chorus_generate runs a
 * prompt as k streams decoded together.
 *
 *   chorus_runtime_options opt;
 *   chorus_runtime_options_init(&opt);
 *   opt.adapter_slots = 2; opt.adapter_max_rank = 32;
 *   chorus_runtime* rt = chorus_runtime_open("model.gguf", &opt);
 *   if (!rt) { fprintf(stderr, "%s\n", chorus_last_error()); return 1; }
 *   chorus_load_adapter(rt, "formal", "formal.gguf", 1.0f);
 *   chorus_stream_options streams[2];
 *   chorus_stream_options_init(&streams[0]);
 *   chorus_stream_options_init(&streams[1]);
 *   streams[0].adapter = "formal";
 *   chorus_request req;
 *   chorus_request_init(&req);
 *   req.prompt = "Once upon a time";
 *   req.streams = streams; req.n_streams = 2;
 *   chorus_result* res = chorus_generate(rt, &req, NULL, NULL);
 *   for (int i = 0; i < chorus_result_stream_count(res); ++i)
 *     printf("%d: %s\n", i, chorus_result_text(res, i));
 *   chorus_result_free(res);
 *   chorus_runtime_close(rt);
 *
 * Errors: functions returning a pointer return NULL, functions returning
 * int return -1; chorus_last_error() then describes the problem (per
 * thread, valid until the next failing call). No function aborts on bad
 * input. Strings passed in are copied; strings returned live as long as the
 * object they come from. A runtime is used by one thread at a time.
 */
#ifndef CHORUS_CHORUS_C_H_
#define CHORUS_CHORUS_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct chorus_runtime chorus_runtime;
typedef struct chorus_result chorus_result;

typedef struct {
  const char* tokenizer;    /* tokenizer.bin of a llama2.c model, or NULL */
  int threads;              /* default 2 */
  int context;              /* KV cells; 0: min(model context, 4096) */
  int max_streams;          /* default 8 */
  int adapter_slots;        /* default 0: no adapters */
  int adapter_max_rank;     /* largest rank an adapter may have */
  const char* weights;      /* "auto" (default), "int4", "int8", "f32" */
} chorus_runtime_options;

typedef struct {
  const char* adapter;   /* a loaded adapter's name, or NULL for the base model */
  const char* suffix;    /* text after the shared prompt for this stream, or NULL */
  int has_seed;          /* nonzero: use seed below (else request seed + index) */
  uint64_t seed;
  int first_token_rank;  /* >= 0: start with the k-th most likely token; -1 off */
} chorus_stream_options;

typedef struct {
  const char* prompt;    /* the shared prefix (required) */
  int add_bos;           /* default 1 */
  int n_predict;         /* new tokens per stream, default 128 */
  int ignore_eos;
  float temperature;     /* default 0.8; 0 = greedy */
  int top_k;             /* default 40 */
  float top_p;           /* default 0.95 */
  float min_p;           /* default 0.05 */
  float repeat_penalty;  /* default 1 (off) */
  uint64_t seed;
  const chorus_stream_options* streams; /* NULL / 0: one stream, base model */
  int n_streams;
} chorus_request;

/* Per generated token: stream index, token id, the text it completes (not
 * NUL-terminated; may be empty). Return 0 to stop that stream. */
typedef int (*chorus_token_callback)(void* user_data, int stream, int32_t token,
                                     const char* piece, size_t piece_len);

void chorus_runtime_options_init(chorus_runtime_options* options);
void chorus_stream_options_init(chorus_stream_options* options);
void chorus_request_init(chorus_request* request);

/* options may be NULL for defaults. */
chorus_runtime* chorus_runtime_open(const char* model_path, const chorus_runtime_options* options);
void chorus_runtime_close(chorus_runtime* runtime);

int chorus_load_adapter(chorus_runtime* runtime, const char* name, const char* path, float scale);
int chorus_unload_adapter(chorus_runtime* runtime, const char* name);

chorus_result* chorus_generate(chorus_runtime* runtime, const chorus_request* request,
                               chorus_token_callback on_token, void* user_data);
int chorus_result_stream_count(const chorus_result* result);
const char* chorus_result_text(const chorus_result* result, int stream);
/* "length", "eog", "stop" or "callback". */
const char* chorus_result_finish_reason(const chorus_result* result, int stream);
/* Number of generated ids; *ids points at them (valid with the result). */
int chorus_result_tokens(const chorus_result* result, int stream, const int32_t** ids);
double chorus_result_total_seconds(const chorus_result* result);
void chorus_result_free(chorus_result* result);

const char* chorus_last_error(void);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* CHORUS_CHORUS_C_H_ */
