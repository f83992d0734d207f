// Measuring the step's cost per row; see ds2d_cost.h.
#include "decode/ds2d_cost.h"

#include <algorithm>
#include <vector>

#include "util/resources.h"

namespace chorus {

float measure_row_cost(Engine& engine, int stream, int32_t pos, int base_rows, int rows) {
  rows = std::min(rows, engine.options().max_rows);
  base_rows = std::max(1, base_rows);
  if (rows <= base_rows) return 0.0f;
  std::vector<Row> step(rows);
  for (int i = 0; i < rows; ++i) {
    Row& r = step[i];
    r.token = 0;
    r.stream = static_cast<int16_t>(stream);
    r.pos = std::min(pos + (i > 0 ? 1 : 0), engine.options().context - 1);
    r.parent = i > 0 && r.pos > step[0].pos ? 0 : -1;  // a root and its children
    r.want_logits = true;
    r.tentative = true;
  }
  const std::span<const Row> one(step.data(), base_rows), all(step);
  auto time = [&](std::span<const Row> s) {
    const double t0 = now_seconds();
    engine.step(s);
    return now_seconds() - t0;
  };
  time(one);
  time(all);  // warm caches
  // The fastest of a few alternating runs: other work on the machine only
  // ever adds time.
  double t1 = 1e30, tn = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    t1 = std::min(t1, time(one));
    tn = std::min(tn, time(all));
  }
  const double extra = std::max(0.0, tn - t1) / (rows - base_rows);
  const double per_row = extra / std::max(t1 / base_rows, 1e-12);
  return static_cast<float>(std::max(0.0, per_row));
}

}  // namespace chorus
