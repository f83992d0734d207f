// Step cost by rows; see step_cost.h.
#include "tools/step_cost.h"

#include <algorithm>
#include <vector>

#include "util/resources.h"

namespace chorus::tools {

double step_ms(Engine& engine, int rows, int at) {
  std::vector<Row> prefill;
  engine.kv_cache().clear_stream(0);
  for (int begin = 0; begin < at; begin += engine.options().max_rows) {
    prefill.clear();
    for (int i = begin; i < std::min(at, begin + engine.options().max_rows); ++i) {
      Row r;
      r.token = 1 + i % 100;
      r.pos = i;
      r.parent = i == begin ? -1 : static_cast<int>(prefill.size()) - 1;
      prefill.push_back(r);
    }
    engine.step(prefill);
  }
  std::vector<Row> step(rows);
  for (int i = 0; i < rows; ++i) {
    step[i].token = 2 + i;
    step[i].pos = at + std::min(i, 1);  // a root and a bush of siblings below it
    step[i].parent = i == 0 ? -1 : 0;
    step[i].tentative = i > 0;
    step[i].want_logits = true;
  }
  step[0].tentative = true;  // nothing joins the stream: every step is alike
  for (int w = 0; w < 2; ++w) engine.step(step);
  // The median of single steps, for up to a second (at least 5): robust to
  // the other work of a shared machine.
  std::vector<double> times;
  const double start = now_seconds();
  while (times.size() < 5 || (times.size() < 400 && now_seconds() - start < 1.0)) {
    const double t0 = now_seconds();
    engine.step(step);
    times.push_back(now_seconds() - t0);
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  engine.kv_cache().clear_stream(0);
  return times[times.size() / 2] * 1000;
}

}  // namespace chorus::tools
