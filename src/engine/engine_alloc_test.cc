// (6) A steady-state step allocates nothing. The test binary counts every
// heap allocation, whatever the path (operator new, malloc, aligned_alloc as
// AlignedBuffer uses, ...; test_util/count_allocations.h); the counter is
// read only around the steps under test.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "engine/engine.h"
#include "test_util/count_allocations.h"
#include "util/aligned_buffer.h"

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

using test_util::heap_allocations;

// Keeps the compiler from eliding an allocation whose block is never used.
void escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

struct alignas(128) OverAligned {
  float x[32];
};

// Every path counts, so a zero below means no allocation at all.
TEST(EngineAllocations, CounterSeesEveryAllocationPath) {
  auto counted = [](auto&& allocate) {
    const long before = heap_allocations();
    allocate();
    return heap_allocations() - before;
  };
  EXPECT_EQ(counted([] {
              auto* p = new std::vector<int>(100);  // the vector and its array
              escape(p);
              delete p;
            }),
            2);
  EXPECT_EQ(counted([] {
              auto* p = new OverAligned;  // operator new with std::align_val_t
              escape(p);
              delete p;
            }),
            1);
  EXPECT_EQ(counted([] {
              void* p = std::malloc(24);
              escape(p);
              p = std::realloc(p, 4096);
              escape(p);
              std::free(p);
            }),
            2);
  EXPECT_EQ(counted([] {
              void* p = std::calloc(4, 8);
              escape(p);
              std::free(p);
            }),
            1);
  EXPECT_EQ(counted([] {
              void* p = std::aligned_alloc(64, 256);
              escape(p);
              std::free(p);
            }),
            1);
  EXPECT_EQ(counted([] {
              void* p = nullptr;
              if (posix_memalign(&p, 64, 100) == 0) escape(p);
              std::free(p);
            }),
            1);
  EXPECT_EQ(counted([] {
              AlignedBuffer<float> b(1000);
              escape(b.data());
            }),
            1);
  EXPECT_EQ(counted([] {
              auto b = AlignedBuffer<float>::uninitialized(1000);
              escape(b.data());
            }),
            1);
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

  const long before = heap_allocations();
  for (int round = 0; round < 10; ++round) run_round();
  const long allocations = heap_allocations() - before;
  EXPECT_EQ(allocations, 0);
  EXPECT_EQ(e.kv_cache().stream_length(3), 6 + 3 * 11);
}

}  // namespace
}  // namespace chorus
