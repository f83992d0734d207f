// The generation loop on stories260K.
#include "decode/generate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "util/error.h"
#include "test_data/stories260k.h"

namespace chorus {
namespace {

const std::string kModels = std::string(CHORUS_SOURCE_DIR) + "/models/";

// tests/data/stories260K_greedy_ids.txt: greedy from BOS, the first 100 ids.
const std::vector<int32_t>& kReferenceIds = test_data::stories260k_greedy_ids();

GenerateParams greedy(int n) {
  GenerateParams p;
  p.n_predict = n;
  p.sampler.temperature = 0.0f;
  return p;
}

class Generate : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_model(kModels + "stories260K.gguf");
    forward_ = std::make_unique<ReferenceForward>(*model_, 256);
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<ReferenceForward> forward_;
};

TEST_F(Generate, GreedyFromBosMatchesReference) {
  const std::vector<int32_t> bos = {1};
  std::vector<int32_t> out;
  const GenerateStats st = generate(*forward_, bos, greedy(100), [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  EXPECT_EQ(out, kReferenceIds);
  EXPECT_EQ(st.n_prompt, 1);
  EXPECT_EQ(st.n_generated, 100);
  EXPECT_EQ(st.stop_reason, StopReason::kLength);
  EXPECT_GE(st.prompt_seconds, 0);
  EXPECT_GT(st.generation_seconds, 0);
}

TEST_F(Generate, LongerPromptContinuesTheSameText) {
  // Prefilling BOS + the first 10 reference ids must continue with id 11 on.
  std::vector<int32_t> prompt = {1};
  prompt.insert(prompt.end(), kReferenceIds.begin(), kReferenceIds.begin() + 10);
  std::vector<int32_t> out;
  generate(*forward_, prompt, greedy(20), [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  EXPECT_EQ(out, std::vector<int32_t>(kReferenceIds.begin() + 10, kReferenceIds.begin() + 30));
}

TEST_F(Generate, CallbackStops) {
  const std::vector<int32_t> bos = {1};
  int calls = 0;
  const GenerateStats st =
      generate(*forward_, bos, greedy(50), [&](int32_t) { return ++calls < 3; });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(st.n_generated, 3);
  EXPECT_EQ(st.stop_reason, StopReason::kCallback);
}

TEST_F(Generate, SampledRunIsReproducible) {
  const std::vector<int32_t> bos = {1};
  GenerateParams p;
  p.n_predict = 40;
  p.sampler.seed = 1234;
  std::vector<int32_t> a, b;
  generate(*forward_, bos, p, [&](int32_t id) {
    a.push_back(id);
    return true;
  });
  generate(*forward_, bos, p, [&](int32_t id) {
    b.push_back(id);
    return true;
  });
  EXPECT_EQ(a, b);
  EXPECT_FALSE(a.empty());
}

TEST_F(Generate, BadRequestsAreErrors) {
  auto keep = [](int32_t) { return true; };
  const std::vector<int32_t> bos = {1};
  EXPECT_THROW(generate(*forward_, {}, greedy(5), keep), Error);
  EXPECT_THROW(generate(*forward_, bos, greedy(-1), keep), Error);
  EXPECT_THROW(generate(*forward_, bos, greedy(256), keep), Error);  // 1 + 256 > 256
  EXPECT_NO_THROW(generate(*forward_, bos, greedy(255), [](int32_t) { return false; }));
  GenerateParams bad = greedy(5);
  bad.sampler.top_p = 2.0f;
  EXPECT_THROW(generate(*forward_, bos, bad, keep), Error);
}

}  // namespace
}  // namespace chorus
