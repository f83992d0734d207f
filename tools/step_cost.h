// The cost of one engine step by its number of rows, measured the way a
// DS2D tree step runs, for `chorus forecast eval --cost-only` and
// `chorus bench`.
#pragma once

#include "engine/engine.h"

namespace chorus::tools {

// Milliseconds of one step of `rows` rows (every row wanting logits) at
// position `at` of stream 0 after a committed prompt of `at` tokens: a
// root and rows - 1 siblings below it, all tentative, so every timed step
// is alike. The median of single steps over up to a second (at least 5),
// robust to the other work of a shared machine. Needs at + rows cells and
// rows <= max_rows; clears stream 0 before and after.
double step_ms(Engine& engine, int rows, int at);

}  // namespace chorus::tools
