// chorus command-line entry point: dispatches to one subcommand per file.
#include <cstdio>

int main(int argc, char** argv) {
  std::fprintf(stderr, "chorus: no commands yet\n");
  return 1;
}
