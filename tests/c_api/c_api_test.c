/* The C API from C: greedy output equals the reference ids, streams and
 * callbacks work, and bad input comes back as NULL / -1 with a message. */
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
  char model[4096], ids_path[4096];
  snprintf(model, sizeof model, "%s/models/stories260K.gguf", argv[1]);
  snprintf(ids_path, sizeof ids_path, "%s/tests/data/stories260K_greedy_ids.txt", argv[1]);

  int reference[100], n_reference = 0;
  FILE* f = fopen(ids_path, "r");
  EXPECT(f != NULL, "cannot open %s", ids_path);
  if (f == NULL) return 1;
  while (n_reference < 100 && fscanf(f, "%d", &reference[n_reference]) == 1) ++n_reference;
  fclose(f);

  chorus_runtime* bad = chorus_runtime_open("/nonexistent/model.gguf", NULL);
  EXPECT(bad == NULL, "opening a missing file must fail");
  EXPECT(strstr(chorus_last_error(), "/nonexistent/model.gguf") != NULL, "error was: %s",
         chorus_last_error());

  chorus_runtime_options opt;
  chorus_runtime_options_init(&opt);
  opt.context = 256;
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
  req.n_predict = 20;
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
    EXPECT(n == 20, "stream 0 generated %d tokens", n);
    for (int i = 0; i < n && i < n_reference; ++i) {
      EXPECT(ids[i] == reference[i], "token %d: %d, reference %d", i, ids[i], reference[i]);
    }
    const int32_t* ids1 = NULL;
    EXPECT(chorus_result_tokens(res, 1, &ids1) == 20 && ids1[0] != ids[0],
           "stream 1 must start with another token");
    EXPECT(counts[0] == 20 && counts[1] == 20, "callback counts %d %d", counts[0], counts[1]);
    EXPECT(strcmp(chorus_result_finish_reason(res, 0), "length") == 0, "finish %s",
           chorus_result_finish_reason(res, 0));
    EXPECT(strlen(chorus_result_text(res, 0)) > 0, "empty text");
    EXPECT(chorus_result_text(res, 7) == NULL, "stream 7 does not exist");
    chorus_result_free(res);
  }

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
