// (6) A steady-state step allocates nothing. This file replaces the global
// operator new/delete of the whole test binary with counting versions; the
// counter is read only around the steps under test.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "engine/engine.h"

namespace {
std::atomic<long> g_allocations{0};

void* counted_alloc(std::size_t n, std::size_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (n == 0) n = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(n)
                : std::aligned_alloc(align, (n + align - 1) / align * align);
  return p;
}
void* counted_alloc_or_throw(std::size_t n, std::size_t align) {
  void* p = counted_alloc(n, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
constexpr std::size_t kPlain = alignof(std::max_align_t);
}  // namespace

void* operator new(std::size_t n) { return counted_alloc_or_throw(n, kPlain); }
void* operator new[](std::size_t n) { return counted_alloc_or_throw(n, kPlain); }
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n, kPlain);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n, kPlain);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace chorus {
namespace {

Row make_row(int32_t token, int pos, int16_t stream, int32_t parent, bool tentative) {
  Row r;
  r.token = token;
  r.pos = pos;
  r.stream = stream;
  r.parent = parent;
  r.want_logits = true;
  r.tentative = tentative;
  return r;
}

TEST(EngineAllocations, CounterSeesAllocations) {
  const long before = g_allocations.load();
  auto* p = new std::vector<int>(100);
  delete p;
  EXPECT_GE(g_allocations.load() - before, 2);
}

TEST(EngineAllocations, SteadyStateStepsAllocateNothing) {
  auto model = load_model(std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.gguf");
  EngineOptions o;
  o.max_rows = 16;
  o.context = 256;
  o.threads = 2;
  o.min_parallel_work = 0;  // the parallel paths must not allocate either
  o.adapter_slots = 2;
  o.adapter_max_rank = 8;
  Engine e(*model, o);
  for (int slot = 0; slot < 2; ++slot) {
    LoraAdapter a;
    a.alpha = 8.0f;
    a.layers.resize(model->config.n_layers);
    for (auto& layer : a.layers) {
      for (int t = 0; t < kLoraTargets; ++t) {
        LoraPair p;
        p.rank = 4 + 4 * slot;
        p.in = lora_target_in(model->config, static_cast<LoraTarget>(t));
        p.out = lora_target_out(model->config, static_cast<LoraTarget>(t));
        p.a.assign(static_cast<size_t>(p.rank) * p.in, 0.01f);
        p.b.assign(static_cast<size_t>(p.out) * p.rank, -0.01f);
        layer[t] = std::move(p);
      }
    }
    e.adapters().load(slot == 0 ? "a" : "b", a);
  }

  // A shared prompt, then three kinds of steps: one-row decode (stream 0),
  // two streams at once (1 and 2), and a tentative tree with a commit (3).
  std::vector<Row> prompt;
  for (int i = 0; i < 6; ++i) prompt.push_back(make_row(1 + 50 * i, i, 0, i - 1, false));
  e.step(prompt);
  for (int s = 1; s <= 3; ++s) e.kv_cache().fork_stream(0, s);

  std::vector<Row> decode = {make_row(300, 6, 0, -1, false)};
  // Two streams with different adapters in one step.
  std::vector<Row> pair = {make_row(301, 6, 1, -1, false), make_row(302, 6, 2, -1, false)};
  pair[0].adapter = 0;
  pair[1].adapter = 1;
  // A forecast-style row: a vector instead of a token.
  std::vector<float> vec(model->config.dim, 0.1f);
  decode.push_back(make_row(0, 7, 0, 0, true));
  decode[1].embedding = vec.data();
  std::vector<Row> tree = {make_row(303, 6, 3, -1, false), make_row(304, 7, 3, 0, true),
                           make_row(305, 7, 3, 0, true), make_row(306, 8, 3, 2, true)};
  const std::vector<int> accept = {2, 3};

  auto run_round = [&] {
    decode[0].adapter = static_cast<int16_t>(decode[0].adapter == 0 ? 1 : 0);  // rebinding
    decode[1].adapter = decode[0].adapter;
    e.step(decode);
    e.step(pair);
    e.step(tree);
    e.commit(accept);
    decode[0].pos += 1;
    decode[1].pos += 1;
    for (Row& r : pair) r.pos += 1;
    for (Row& r : tree) r.pos += 3;
  };
  run_round();  // first use of every path

  const long before = g_allocations.load();
  for (int round = 0; round < 10; ++round) run_round();
  const long allocations = g_allocations.load() - before;
  EXPECT_EQ(allocations, 0);
  EXPECT_EQ(e.kv_cache().stream_length(3), 6 + 3 * 11);
}

}  // namespace
}  // namespace chorus
