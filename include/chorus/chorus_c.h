/* chorus: the C API, for embedding in apps (C, JNI, Swift, Python ctypes).
 *
 * A layer over the C++ API in chorus.h with the same reach as `chorus run`:
 * one runtime holds one frozen model and a fixed pool of LoRA adapter
 * slots; chorus_generate runs a prompt as k streams decoded together, each
 * with its own adapter, scale, suffix, seed or first-token rank, with
 * sampling settings, stop strings and DS2D speculation.
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
 * Link with -lchorus (pkg-config chorus, or CMake find_package(chorus) and
 * chorus::chorus).
 *
 * ERRORS. Functions returning a pointer return NULL, functions returning
 * int return -1; chorus_last_error() then says what is wrong in one line,
 * naming the argument, option or file at fault (per thread, valid until the
 * next failing call on that thread). No function aborts on bad input, and a
 * failed chorus_generate changes nothing. Strings passed in are copied
 * before the call returns; strings and arrays returned live as long as the
 * object they come from, unless said otherwise.
 *
 * THREADS. A runtime is used by one thread at a time: calls on the same
 * runtime must not overlap, with one exception: chorus_cancel may be called
 * from any thread at any time while the runtime is open. The token callback
 * runs on the thread that called chorus_generate and must not call
 * functions on that runtime other than chorus_cancel. Different runtimes
 * are independent and may run at once on different threads (each uses its
 * own `threads` workers). chorus_last_error is per thread.
 *
 * ABI. Every struct passed in starts with `struct_size`, which its *_init
 * function sets to sizeof the struct as the caller's header declares it.
 * Always call *_init before setting fields. New fields are only ever
 * appended; the library reads just the first struct_size bytes and uses
 * the defaults for fields the caller's header did not have, so a program
 * built against an older header keeps working with a newer library. Output
 * structs (chorus_runtime_info, chorus_timings, chorus_ds2d_report) work the
 * same way: set struct_size (their *_init does) and the library fills only
 * that much. Arrays of chorus_stream_options are read with the stride of
 * their first element's struct_size. The library's SONAME (libchorus.so.0)
 * changes only when this rule cannot hold.
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

/* "0.1.0": the library's version. */
const char* chorus_version(void);

typedef struct {
  size_t struct_size;       /* sizeof(chorus_runtime_options), set by _init */
  const char* tokenizer;    /* tokenizer.bin of a llama2.c model, or NULL (beside it) */
  int threads;              /* including the calling thread; default 2 */
  int context;              /* KV cells shared by all streams; 0: min(model context, 4096) */
  int max_streams;          /* streams per request, default 8, at most 64 */
  int max_rows;             /* rows per forward step, default 64 */
  int adapter_slots;        /* default 0: no adapters */
  int adapter_max_rank;     /* largest rank an adapter may have */
  const char* weights;      /* layer weights: "auto" (NULL), "int4", "int8", "f32" */
  const char* output_head;  /* the same for the output head */
  /* DS2D self-speculative decoding (output identical to plain decoding):
   * "off" (NULL), "on", or "auto" (decode plainly, and say why in the
   * report's fallback, when the forecasts or budget do not fit the model). */
  const char* ds2d;
  const char* const* ds2d_forecasts; /* forecast GGUF files (NULL / 0: those found, see below) */
  int n_ds2d_forecasts;
  int ds2d_budget;          /* rows per stream and step, default 32, 1..256 */
  int ds2d_ngram;           /* also draft repeated n-grams, default 1 */
  float ds2d_row_cost;      /* relative cost of a row; -1 (default) measures it, 0 fills the budget */
  /* With no ds2d_forecasts: 1 (default) uses the forecast files beside the
   * model and each adapter (models/README.md names them); 0 drafts from
   * n-grams only. */
  int ds2d_find_forecasts;
  const char* kv_type;      /* KV cache cells: "f16" (NULL, the default) or "f32" */
} chorus_runtime_options;

typedef struct {
  size_t struct_size;    /* sizeof(chorus_stream_options), set by _init */
  const char* adapter;   /* a loaded adapter's name, or NULL for the base model */
  const char* suffix;    /* text after the shared prompt for this stream only, or NULL */
  int has_seed;          /* nonzero: use seed below (else request seed + stream index) */
  uint64_t seed;
  int first_token_rank;  /* >= 0: start with the k-th most likely token (0 = greedy); -1 off */
  /* Nonzero: this request runs the stream's adapter at adapter_scale (>= 0)
   * instead of its loaded scale; streams of one adapter share one scale. */
  int has_adapter_scale;
  float adapter_scale;
} chorus_stream_options;

typedef struct {
  size_t struct_size;    /* sizeof(chorus_request), set by _init */
  const char* prompt;    /* the shared prefix (required; "" with add_bos is BOS alone) */
  int add_bos;           /* default 1 */
  int n_predict;         /* new tokens per stream, default 128; -1: as the context allows */
  int ignore_eos;        /* default 0 */
  float temperature;     /* default 0.8; 0 = greedy */
  int top_k;             /* default 40; 0 = off */
  float top_p;           /* default 0.95; 1 = off */
  float min_p;           /* default 0.05; 0 = off */
  float repeat_penalty;  /* default 1 (off) */
  int repeat_last_n;     /* default 64; 0 = off, -1 = whole history */
  uint64_t seed;         /* stream i uses seed + i unless it sets its own */
  const chorus_stream_options* streams; /* NULL / 0: one stream on the base model */
  int n_streams;
  const char* const* stop; /* a stream stops when its text contains one of these */
  int n_stop;
  int speculate;         /* default 1; 0 decodes this request plainly even with DS2D on */
  /* Nonzero: special token texts in the prompt ("<|im_start|>", "<s>", ...)
   * become those tokens, as a chat template's output needs (default 0). */
  int parse_special;
} chorus_request;

/* Per generated token: the stream's index in the request, the token id, and
 * the text it completes (not NUL-terminated; may be empty while a UTF-8
 * character is split). Bytes a stream still holds back at the end come in
 * one last call with token -1. Return 0 to stop that stream. */
typedef int (*chorus_token_callback)(void* user_data, int stream, int32_t token,
                                     const char* piece, size_t piece_len);

void chorus_runtime_options_init(chorus_runtime_options* options);
void chorus_stream_options_init(chorus_stream_options* options);
void chorus_request_init(chorus_request* request);

/* Loads a model (GGUF or llama2.c .bin) and packs it for this CPU. options
 * may be NULL for the defaults. */
chorus_runtime* chorus_runtime_open(const char* model_path, const chorus_runtime_options* options);
void chorus_runtime_close(chorus_runtime* runtime); /* NULL is fine */

/* Adapters: a PEFT directory (or its adapter_model.safetensors) or a
 * llama.cpp GGUF LoRA, into a free slot; the base weights are untouched. A
 * forecast file whose adapter name matches serves that adapter's streams.
 * The scale belongs to the loaded adapter: for one adapter at two scales in
 * one request, load it twice under two names. */
int chorus_load_adapter(chorus_runtime* runtime, const char* name, const char* path, float scale);
int chorus_unload_adapter(chorus_runtime* runtime, const char* name);
/* The user scale of a loaded adapter (effective: scale x alpha / rank). */
int chorus_set_adapter_scale(chorus_runtime* runtime, const char* name, float scale);
/* The loaded adapters: their number, and the i-th name (valid until the
 * next chorus_load_adapter or chorus_unload_adapter on the runtime). */
int chorus_adapter_count(chorus_runtime* runtime);
const char* chorus_adapter_name(chorus_runtime* runtime, int index);

/* Runs a request. on_token may be NULL. Returns the result (free it with
 * chorus_result_free) or NULL when the request is invalid. */
chorus_result* chorus_generate(chorus_runtime* runtime, const chorus_request* request,
                               chorus_token_callback on_token, void* user_data);

/* Asks the generation running on this runtime to stop, from any thread:
 * each stream stops at its next token (a prompt prefill under way runs to
 * its end first) and chorus_generate returns the result so far, with finish
 * reason "cancelled". A cancel while no generation runs is ignored. */
int chorus_cancel(chorus_runtime* runtime);

int chorus_result_stream_count(const chorus_result* result);
const char* chorus_result_text(const chorus_result* result, int stream);
/* The adapter the stream used ("" for the base model). */
const char* chorus_result_adapter(const chorus_result* result, int stream);
/* "length", "eog" (end of generation token), "stop" (a stop string),
 * "callback" (the callback returned 0) or "cancelled" (chorus_cancel). */
const char* chorus_result_finish_reason(const chorus_result* result, int stream);
/* Number of generated ids; *ids points at them (valid with the result). */
int chorus_result_tokens(const chorus_result* result, int stream, const int32_t** ids);
/* The shared prompt as tokenized. */
int chorus_result_prompt_tokens(const chorus_result* result, const int32_t** ids);
double chorus_result_total_seconds(const chorus_result* result);
void chorus_result_free(chorus_result* result); /* NULL is fine */

typedef struct {
  size_t struct_size;       /* sizeof(chorus_timings), set by _init */
  int prompt_tokens;        /* the shared prompt */
  int prompt_prefills;      /* distinct adapters among the streams */
  int prefill_rows;         /* prompt and suffix tokens run through the model */
  int generated_tokens;     /* all streams */
  double prompt_seconds;
  double suffix_seconds;    /* suffixes and first tokens */
  double decode_seconds;
  double total_seconds;
  size_t kv_bytes_used;
} chorus_timings;
void chorus_timings_init(chorus_timings* timings);
int chorus_result_timings(const chorus_result* result, chorus_timings* out);

/* What DS2D did in the request (zeros when it was off). */
typedef struct {
  size_t struct_size;       /* sizeof(chorus_ds2d_report), set by _init */
  int64_t steps;            /* forward passes in the decode phase */
  int64_t trees;            /* (stream, step) pairs */
  double tau;               /* mean tokens accepted per tree */
  double rows_per_step;
  const double* acceptance; /* [d - 1]: acceptance at depth d (valid with the result) */
  int n_acceptance;
  const char* fallback;     /* ds2d "auto" that could not be set up: why; else "" */
} chorus_ds2d_report;
void chorus_ds2d_report_init(chorus_ds2d_report* report);
int chorus_result_ds2d(const chorus_result* result, chorus_ds2d_report* out);

/* Tokenizes text into ids[0..max_ids). Returns the number of tokens, which
 * may exceed max_ids (then only the first max_ids are written: call again
 * with more room), or -1. */
int chorus_tokenize(chorus_runtime* runtime, const char* text, int add_bos, int32_t* ids,
                    int max_ids);
/* The text of n ids, NUL-terminated, allocated: free it with chorus_free.
 * Every id must be in the vocabulary. */
char* chorus_detokenize(chorus_runtime* runtime, const int32_t* ids, int n);
void chorus_free(void* p);

/* Chat formatting: a conversation as the model's Jinja chat template renders
 * it, byte for byte (the common families are recognised: ChatML, Llama 2/3,
 * Zephyr, Mistral, Gemma, Phi-3). This struct never grows. */
typedef struct {
  const char* role;     /* "system", "user", "assistant" */
  const char* content;
} chorus_chat_message;
/* The prompt for n messages, allocated (free it with chorus_free), or NULL
 * with chorus_last_error (an unrecognised template, which names the choices;
 * a conversation the template refuses, with its message). `template_choice`:
 * a template name ("chatml", "llama3", ...), a path to a Jinja template
 * file, or NULL for the model's own (GGUF tokenizer.chat_template).
 * add_generation_prompt nonzero opens the assistant's turn. *add_bos (when
 * not NULL) is what chorus_request.add_bos must be (0 when the template
 * wrote BOS itself); generate the prompt with parse_special = 1. */
char* chorus_chat_format(chorus_runtime* runtime, const char* template_choice,
                         const chorus_chat_message* messages, int n_messages,
                         int add_generation_prompt, int* add_bos);

typedef struct {
  size_t struct_size;       /* sizeof(chorus_runtime_info), set by _init */
  const char* model_path;   /* strings valid while the runtime is open */
  int n_vocab;
  int trained_context;
  int context;              /* KV cells of this runtime */
  int max_streams;
  int adapter_slots;
  int adapter_max_rank;
  const char* kernels;      /* the kernel table in use: "avx2", "neon_dotprod", "generic", ... */
  size_t weight_bytes;
  size_t kv_bytes;
  double load_seconds;      /* reading the model and adapters */
  double pack_seconds;      /* repacking weights and allocating the engine */
  int ds2d;                 /* 1 when DS2D is on (after any "auto" fallback) */
  const char* kv_type;      /* "f16" or "f32" */
} chorus_runtime_info;
void chorus_runtime_info_init(chorus_runtime_info* info);
int chorus_runtime_get_info(chorus_runtime* runtime, chorus_runtime_info* out);

const char* chorus_last_error(void);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* CHORUS_CHORUS_C_H_ */
