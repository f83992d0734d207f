// The reference forward pass on stories260K: greedy decoding must reproduce
// the published reference ids from both file formats.
#include "engine/reference_forward.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "gguf/quants.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "util/error.h"
#include "test_data/stories260k.h"

namespace chorus {
namespace {

const std::string kModels = std::string(CHORUS_SOURCE_DIR) + "/models/";

// tests/data/stories260K_greedy_ids.txt: greedy from BOS, the first 100 ids.
const std::vector<int32_t>& kReferenceIds = test_data::stories260k_greedy_ids();

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::vector<int32_t> greedy_from_bos(ReferenceForward& f, int n) {
  std::vector<int32_t> out;
  int32_t token = 1;  // BOS
  for (int pos = 0; pos < n; ++pos) {
    token = argmax(f.forward(token, pos));
    out.push_back(token);
  }
  return out;
}

TEST(ReferenceForward, GreedyMatchesReferenceGguf) {
  auto model = load_model(kModels + "stories260K.gguf");
  ReferenceForward f(*model);
  EXPECT_EQ(f.context_length(), 2048);
  EXPECT_EQ(greedy_from_bos(f, 100), kReferenceIds);
}

TEST(ReferenceForward, GreedyMatchesReferenceLlama2c) {
  auto model = load_model(kModels + "stories260K.bin", kModels + "tok512.bin");
  ReferenceForward f(*model);
  EXPECT_EQ(f.context_length(), 512);
  EXPECT_EQ(greedy_from_bos(f, 100), kReferenceIds);
}

TEST(ReferenceForward, BothFormatsGiveIdenticalLogits) {
  auto g = load_model(kModels + "stories260K.gguf");
  auto b = load_model(kModels + "stories260K.bin");
  ReferenceForward fg(*g, 64), fb(*b, 64);
  for (int pos = 0; pos < 8; ++pos) {
    const int32_t token = pos == 0 ? 1 : kReferenceIds[pos - 1];
    std::span<const float> logits_g = fg.forward(token, pos);
    const std::vector<float> lg(logits_g.begin(), logits_g.end());
    std::span<const float> lb = fb.forward(token, pos);
    ASSERT_EQ(lg.size(), lb.size());
    for (size_t i = 0; i < lg.size(); ++i) ASSERT_EQ(lg[i], lb[i]) << "pos " << pos << " id " << i;
  }
}

TEST(ReferenceForward, ResetAndRewindRepeatResults) {
  auto model = load_model(kModels + "stories260K.gguf");
  ReferenceForward f(*model, 32);
  const std::vector<int32_t> prompt = {1, 403, 407, 261};
  const std::vector<float> first = f.forward_all(prompt);
  EXPECT_EQ(f.n_cached(), 4);

  // Rewind to position 2 and run the same tokens again.
  f.forward(407, 2);
  EXPECT_EQ(f.n_cached(), 3);
  std::span<const float> again = f.forward(261, 3);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), again.begin()));

  f.reset();
  EXPECT_EQ(f.n_cached(), 0);
  EXPECT_EQ(f.forward_all(prompt), first);
}

TEST(ReferenceForward, BadTokenOrPositionIsError) {
  auto model = load_model(kModels + "stories260K.gguf");
  ReferenceForward f(*model, 4);
  EXPECT_THROW(f.forward(-1, 0), Error);
  EXPECT_THROW(f.forward(512, 0), Error);
  EXPECT_THROW(f.forward(1, -1), Error);
  EXPECT_THROW(f.forward(1, 1), Error);  // skips position 0
  std::vector<int32_t> four = {1, 2, 3, 4};
  f.forward_all(four);
  EXPECT_THROW(f.forward(1, 4), Error);  // past the context of 4
}

// The same model with every matrix stored as F16: exercises the dequantizing
// path of matvec; logits stay within F16 rounding of the F32 ones.
TEST(ReferenceForward, F16CopyStaysClose) {
  const std::string src = kModels + "stories260K.gguf";
  const std::string dst = (std::filesystem::path(::testing::TempDir()) /
                           ("chorus_f16_" + std::to_string(::getpid()) + ".gguf"))
                              .string();
  {
    const gguf::Reader r = gguf::Reader::open(src);
    gguf::Writer w;
    for (const auto& [key, value] : r.metadata()) w.set(key, value);
    for (const gguf::TensorInfo& t : r.tensors()) {
      const bool matrix = t.dims.size() == 2;
      const gguf::TensorType type = matrix ? gguf::TensorType::kF16 : gguf::TensorType::kF32;
      const float* data = reinterpret_cast<const float*>(t.data);
      const int64_t cols = t.cols();
      w.add_tensor(t.name, type, t.dims, [data, type, cols](std::span<uint8_t> out) {
        const size_t rb = gguf::row_bytes(type, cols);
        for (size_t r = 0; r * rb < out.size(); ++r) {
          gguf::quantize_row(type, data + r * cols, out.data() + r * rb, cols);
        }
      });
    }
    w.write(dst);
  }
  auto f32 = load_model(src);
  auto f16 = load_model(dst);
  EXPECT_EQ(f16->weights.layers[0].wq.type, gguf::TensorType::kF16);
  ReferenceForward a(*f32, 16), b(*f16, 16);
  for (int pos = 0; pos < 10; ++pos) {
    const int32_t token = pos == 0 ? 1 : kReferenceIds[pos - 1];
    const std::vector<float> la = a.forward_all({&token, 1}, pos);
    std::span<const float> lb = b.forward(token, pos);
    float max_diff = 0;
    for (size_t i = 0; i < la.size(); ++i) max_diff = std::max(max_diff, std::fabs(la[i] - lb[i]));
    EXPECT_LT(max_diff, 0.05f) << "pos " << pos;
    EXPECT_EQ(argmax(lb), kReferenceIds[pos]) << "pos " << pos;
  }
  std::filesystem::remove(dst);
}

}  // namespace
}  // namespace chorus
