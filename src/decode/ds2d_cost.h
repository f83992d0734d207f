// What one more row costs in a step, for the DS2D shape (TreeLimits::
// row_cost). It depends on the model and the machine: at real sizes a step
// streams every weight once whatever its rows (memory-bound), so 32 rows
// cost little more than one; a model whose weights sit in cache (such as
// stories260K) pays for every row in compute. Measured, not guessed.
#pragma once

#include "engine/engine.h"

namespace chorus {

// Times steps of `base_rows` rows (a plain step of that many streams) and of
// `rows` rows, all tentative rows of `stream` at position `pos` (they see
// the stream's committed cells like a real tree and leave no trace), and
// returns the cost of one extra row relative to one stream's share of the
// plain step: ((t(rows) - t(base)) / (rows - base)) / (t(base) / base),
// >= 0. The next step drops the pending cells of an earlier one, so call
// it between decodes, not between a step and its commit.
float measure_row_cost(Engine& engine, int stream, int32_t pos, int base_rows, int rows);

}  // namespace chorus
