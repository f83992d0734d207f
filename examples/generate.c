/* A small app on the chorus C API: streams a greedy continuation of a
 * prompt to stdout as it is generated, optionally with a LoRA adapter.
 *
 *   generate MODEL PROMPT [N_TOKENS] [ADAPTER_FILE]
 *
 * Build against an installed chorus (see examples/CMakeLists.txt):
 *   cc generate.c $(pkg-config --cflags --libs chorus) -o generate
 */
#include <stdio.h>
#include <stdlib.h>

#include <chorus/chorus_c.h>

static int print_piece(void* user_data, int stream, int32_t token, const char* piece, size_t len) {
  (void)user_data, (void)stream, (void)token;
  fwrite(piece, 1, len, stdout);
  fflush(stdout);
  return 1; /* 0 would stop the stream */
}

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) {
    fprintf(stderr, "usage: %s MODEL PROMPT [N_TOKENS] [ADAPTER_FILE]\n", argv[0]);
    return 2;
  }
  chorus_runtime_options options;
  chorus_runtime_options_init(&options);
  options.context = 512;
  if (argc > 4) {
    options.adapter_slots = 1;
    options.adapter_max_rank = 64;
  }
  chorus_runtime* rt = chorus_runtime_open(argv[1], &options);
  if (rt == NULL) {
    fprintf(stderr, "error: %s\n", chorus_last_error());
    return 1;
  }
  chorus_runtime_info info;
  chorus_runtime_info_init(&info);
  if (chorus_runtime_get_info(rt, &info) == 0) {
    fprintf(stderr, "chorus %s, kernels %s, vocabulary %d\n", chorus_version(), info.kernels, info.n_vocab);
  }

  chorus_stream_options stream;
  chorus_stream_options_init(&stream);
  if (argc > 4) {
    if (chorus_load_adapter(rt, "style", argv[4], 1.0f) != 0) {
      fprintf(stderr, "error: %s\n", chorus_last_error());
      chorus_runtime_close(rt);
      return 1;
    }
    stream.adapter = "style";
  }
  chorus_request request;
  chorus_request_init(&request);
  request.prompt = argv[2];
  request.n_predict = argc > 3 ? atoi(argv[3]) : 64;
  request.temperature = 0.0f; /* greedy: the same output on every run */
  request.streams = &stream;
  request.n_streams = 1;

  fputs(argv[2], stdout);
  chorus_result* result = chorus_generate(rt, &request, print_piece, NULL);
  if (result == NULL) {
    fprintf(stderr, "error: %s\n", chorus_last_error());
    chorus_runtime_close(rt);
    return 1;
  }
  putchar('\n');
  fprintf(stderr, "%d tokens (%s) in %.3f s\n", chorus_result_tokens(result, 0, NULL),
          chorus_result_finish_reason(result, 0), chorus_result_total_seconds(result));
  chorus_result_free(result);
  chorus_runtime_close(rt);
  return 0;
}
