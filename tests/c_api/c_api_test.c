/* The C API from C: greedy output equals the reference ids, streams and
 * callbacks work, a bundled style adapter loads, gives its own reference ids
 * and unloads, and bad input comes back as NULL / -1 with a message. */
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

static int count_tokens(void* user, int stream, int32_t token, const char* piece, size_t len) {
  (void)token;
  (void)piece;
  (void)len;
  int* counts = (int*)user;
  if (stream >= 0 && stream < 2) counts[stream]++;
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SOURCE_DIR\n", argv[0]);
    return 2;
  }
  char model[4096], ids_path[4096], dog[4096], dog_ids_path[4096];
  snprintf(model, sizeof model, "%s/models/stories260K.gguf", argv[1]);
  snprintf(ids_path, sizeof ids_path, "%s/tests/data/stories260K_greedy_ids.txt", argv[1]);
  snprintf(dog, sizeof dog, "%s/models/adapters/dog.gguf", argv[1]);
  snprintf(dog_ids_path, sizeof dog_ids_path, "%s/tests/data/style_adapters_greedy_ids.txt",
           argv[1]);

  /* The first 100 greedy ids from BOS; the file holds exactly those. */
  int reference[128], n_reference = 0;
  FILE* f = fopen(ids_path, "r");
  EXPECT(f != NULL, "cannot open %s", ids_path);
  if (f == NULL) return 1;
  while (n_reference < 128 && fscanf(f, "%d", &reference[n_reference]) == 1) ++n_reference;
  fclose(f);
  EXPECT(n_reference == 100, "%s holds %d ids, want 100", ids_path, n_reference);
  if (n_reference != 100) return 1;
  /* The dog adapter's 100 greedy ids after "Once upon a time". */
  int dog_reference[128];
  const int n_dog = read_named_ids(dog_ids_path, "dog", dog_reference, 128);
  EXPECT(n_dog == 100, "%s holds %d ids for dog, want 100", dog_ids_path, n_dog);
  if (n_dog != 100) return 1;

  chorus_runtime* bad = chorus_runtime_open("/nonexistent/model.gguf", NULL);
  EXPECT(bad == NULL, "opening a missing file must fail");
  EXPECT(strstr(chorus_last_error(), "/nonexistent/model.gguf") != NULL, "error was: %s",
         chorus_last_error());

  chorus_runtime_options opt;
  chorus_runtime_options_init(&opt);
  opt.context = 256;
  opt.adapter_slots = 1;
  opt.adapter_max_rank = 8;
  chorus_runtime* rt = chorus_runtime_open(model, &opt);
  EXPECT(rt != NULL, "open: %s", chorus_last_error());
  if (rt == NULL) return 1;

  /* Two greedy streams from BOS: the most likely and the second most likely
   * first token. Stream 0 is plain greedy decoding. */
  chorus_stream_options streams[2];
  chorus_stream_options_init(&streams[0]);
  chorus_stream_options_init(&streams[1]);
  streams[0].first_token_rank = 0;
  streams[1].first_token_rank = 1;
  chorus_request req;
  chorus_request_init(&req);
  req.prompt = "";
  req.n_predict = 100;
  req.ignore_eos = 1;
  req.temperature = 0.0f;
  req.streams = streams;
  req.n_streams = 2;
  int counts[2] = {0, 0};
  chorus_result* res = chorus_generate(rt, &req, count_tokens, counts);
  EXPECT(res != NULL, "generate: %s", chorus_last_error());
  if (res != NULL) {
    EXPECT(chorus_result_stream_count(res) == 2, "streams: %d", chorus_result_stream_count(res));
    const int32_t* ids = NULL;
    const int n = chorus_result_tokens(res, 0, &ids);
    EXPECT(n == 100, "stream 0 generated %d tokens", n);
    for (int i = 0; i < n && i < n_reference; ++i) {
      EXPECT(ids[i] == reference[i], "token %d: %d, reference %d", i, ids[i], reference[i]);
    }
    const int32_t* ids1 = NULL;
    EXPECT(chorus_result_tokens(res, 1, &ids1) == 100 && ids1[0] != ids[0],
           "stream 1 must start with another token");
    EXPECT(counts[0] == 100 && counts[1] == 100, "callback counts %d %d", counts[0], counts[1]);
    EXPECT(strcmp(chorus_result_finish_reason(res, 0), "length") == 0, "finish %s",
           chorus_result_finish_reason(res, 0));
    EXPECT(strlen(chorus_result_text(res, 0)) > 0, "empty text");
    EXPECT(chorus_result_text(res, 7) == NULL, "stream 7 does not exist");
    chorus_result_free(res);
  }

  /* A bundled style adapter by name: its stream gives the adapter's own
   * greedy ids, the base-model stream beside it does not; unloaded, the name
   * is unknown again. */
  EXPECT(chorus_load_adapter(rt, "dog", dog, 1.0f) == 0, "load dog: %s", chorus_last_error());
  chorus_stream_options styled[2];
  chorus_stream_options_init(&styled[0]);
  chorus_stream_options_init(&styled[1]);
  styled[0].adapter = "dog";
  chorus_request dog_req = req;
  dog_req.prompt = "Once upon a time";
  dog_req.streams = styled;
  dog_req.n_streams = 2;
  res = chorus_generate(rt, &dog_req, NULL, NULL);
  EXPECT(res != NULL, "generate with dog: %s", chorus_last_error());
  if (res != NULL) {
    const int32_t* ids = NULL;
    const int n = chorus_result_tokens(res, 0, &ids);
    EXPECT(n == 100, "dog stream generated %d tokens", n);
    for (int i = 0; i < n && i < n_dog; ++i) {
      EXPECT(ids[i] == dog_reference[i], "dog token %d: %d, reference %d", i, ids[i],
             dog_reference[i]);
    }
    const int32_t* base = NULL;
    const int n_base = chorus_result_tokens(res, 1, &base);
    int same = n_base == n;
    for (int i = 0; same && i < n; ++i) same = base[i] == ids[i];
    EXPECT(!same, "the base-model stream gave the dog adapter's ids");
    chorus_result_free(res);
  }
  EXPECT(chorus_unload_adapter(rt, "dog") == 0, "unload dog: %s", chorus_last_error());
  EXPECT(chorus_generate(rt, &dog_req, NULL, NULL) == NULL, "an unloaded adapter must fail");
  EXPECT(strstr(chorus_last_error(), "no adapter named 'dog'") != NULL, "error was: %s",
         chorus_last_error());
  EXPECT(chorus_unload_adapter(rt, "dog") == -1, "unloading twice must fail");

  /* Bad requests: an unknown adapter, an absurd stream count, NULL prompt. */
  streams[1].adapter = "missing";
  EXPECT(chorus_generate(rt, &req, NULL, NULL) == NULL, "unknown adapter must fail");
  EXPECT(strstr(chorus_last_error(), "missing") != NULL, "error was: %s", chorus_last_error());
  streams[1].adapter = NULL;
  chorus_stream_options many[100];
  for (int i = 0; i < 100; ++i) chorus_stream_options_init(&many[i]);
  req.streams = many;
  req.n_streams = 100;
  EXPECT(chorus_generate(rt, &req, NULL, NULL) == NULL, "100 streams must fail");
  req.streams = streams;
  req.n_streams = 2;
  req.prompt = NULL;
  EXPECT(chorus_generate(rt, &req, NULL, NULL) == NULL, "NULL prompt must fail");
  EXPECT(chorus_load_adapter(rt, "x", "/nonexistent/adapter.gguf", 1.0f) == -1,
         "loading a missing adapter must fail");
  EXPECT(chorus_load_adapter(NULL, "x", "y", 1.0f) == -1, "NULL runtime must fail");

  chorus_runtime_close(rt);
  if (failures == 0) printf("c_api: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
