// token_logprobs: log-softmax of a row, alternatives most likely first with
// ties to the lower id, the count clamped to the vocabulary.
#include "decode/token_logprobs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace chorus {
namespace {

TEST(TokenLogprobs, LogSoftmaxOfTheRow) {
  // Probabilities 1/2, 1/4, 1/8, 1/8 from logits shifted by 7 (the shift
  // must not matter).
  const std::vector<float> row = {7 + std::log(4.0f), 7 + std::log(2.0f), 7.0f, 7.0f};
  TokenLogprobs lp;
  token_logprobs(row, 2, 3, &lp);
  EXPECT_EQ(lp.id, 2);
  EXPECT_NEAR(lp.logprob, std::log(1.0 / 8), 1e-6);
  // 2 before 3: the tie goes to the lower id.
  ASSERT_EQ(lp.top_ids, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_NEAR(lp.top_logprobs[0], std::log(0.5), 1e-6);
  EXPECT_NEAR(lp.top_logprobs[1], std::log(0.25), 1e-6);
  EXPECT_EQ(lp.top_logprobs[2], lp.logprob);
}

TEST(TokenLogprobs, CountIsClampedAndZeroGivesNoAlternatives) {
  const std::vector<float> row = {1.0f, 3.0f, 2.0f};
  TokenLogprobs lp;
  token_logprobs(row, 1, 10, &lp);
  EXPECT_EQ(lp.top_ids, (std::vector<int32_t>{1, 2, 0}));
  token_logprobs(row, 0, 0, &lp);
  EXPECT_TRUE(lp.top_ids.empty());
  EXPECT_TRUE(lp.top_logprobs.empty());
  EXPECT_LT(lp.logprob, 0.0f);
}

}  // namespace
}  // namespace chorus
