// Training-free forecast derivation on stories260K, kept small and fast.
#include "decode/forecast_derive.h"

#include <gtest/gtest.h>

#include <string>

#include "decode/ds2d_testing.h"
#include "util/error.h"

namespace chorus {
namespace {

ForecastDeriveOptions small(const std::string& method) {
  ForecastDeriveOptions o;
  o.method = method;
  o.count = 2;
  o.sequences = 2;
  o.length = 48;
  o.iterations = 3;
  o.pairs = 2;
  o.batch = 16;
  o.pool_positions = 24;
  o.threads = 1;
  return o;
}

TEST(ForecastDerive, EveryMethodGivesAValidSetThatOnlyImproves) {
  const auto model = ds2d_testing::load_stories();
  ForecastEmbeddings prev;
  ForecastDeriveReport weighted_mean;
  for (const std::string method : {"mean", "weighted-mean", "token", "search"}) {
    SCOPED_TRACE(method);
    ForecastDeriveReport report;
    int messages = 0;
    const ForecastEmbeddings f =
        derive_forecast(*model, small(method), &report, [&](const std::string&) { ++messages; });
    EXPECT_NO_THROW(validate_forecast(f, *model));
    EXPECT_EQ(f.count, 2);
    EXPECT_EQ(f.method, "derived-" + method);
    EXPECT_GT(messages, 0);
    for (const auto* v : {&report.start_accuracy, &report.accuracy, &report.start_top4,
                          &report.top4, &report.start_score, &report.score,
                          &report.start_log_likelihood, &report.log_likelihood}) {
      ASSERT_EQ(v->size(), 2u);
    }
    const bool one_stage = method == "mean" || method == "weighted-mean";
    for (int k = 0; k < 2; ++k) {
      SCOPED_TRACE(k + 1);
      // A later stage is only kept when its score (top-4 hits + top-1 hits +
      // 0.1 x mean probability) beats the one before: the result's is never
      // below the start's, and the means have no later stage.
      EXPECT_GE(report.score[k], report.start_score[k]);
      if (one_stage) {
        EXPECT_EQ(report.score[k], report.start_score[k]);
        EXPECT_EQ(report.accuracy[k], report.start_accuracy[k]);
        EXPECT_EQ(report.top4[k], report.start_top4[k]);
      }
      // The scores are made of the reported hit rates (the rest is 0.1 x a
      // probability).
      EXPECT_NEAR(report.score[k] - report.top4[k] - report.accuracy[k], 0.05, 0.05 + 1e-12);
      EXPECT_NEAR(report.start_score[k] - report.start_top4[k] - report.start_accuracy[k], 0.05,
                  0.05 + 1e-12);
      EXPECT_GE(report.top4[k], report.accuracy[k]);
      EXPECT_GE(report.start_top4[k], report.start_accuracy[k]);
    }
    // token and search start forecast 1 from the weighted mean, on the same
    // text (same seed): that start is the weighted-mean method's result.
    if (method == "weighted-mean") weighted_mean = report;
    if (method == "token" || method == "search") {
      EXPECT_EQ(report.start_score[0], weighted_mean.score[0]);
      EXPECT_EQ(report.start_accuracy[0], weighted_mean.accuracy[0]);
    }
    // Each stage starts where the one before ends (the search may keep
    // its start in so few iterations).
    if (method != "search") {
      EXPECT_NE(f.embd, prev.embd);
    }
    prev = f;
  }
}

TEST(ForecastDerive, IsReproducible) {
  const auto model = ds2d_testing::load_stories();
  const ForecastEmbeddings a = derive_forecast(*model, small("search"));
  const ForecastEmbeddings b = derive_forecast(*model, small("search"));
  EXPECT_EQ(a.embd, b.embd);
}

TEST(ForecastDerive, RejectsBadOptions) {
  const auto model = ds2d_testing::load_stories();
  auto error_of = [&](ForecastDeriveOptions o) {
    try {
      derive_forecast(*model, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  ForecastDeriveOptions o = small("magic");
  EXPECT_NE(error_of(o).find("forecast method"), std::string::npos);
  o = small("mean");
  o.count = 0;
  EXPECT_NE(error_of(o).find("forecast count"), std::string::npos);
  o = small("mean");
  o.length = 3000;  // beyond stories260K's context of 2048
  EXPECT_NE(error_of(o).find("forecast length"), std::string::npos);
  o = small("mean");
  o.sequences = 0;
  EXPECT_NE(error_of(o).find("forecast sequences"), std::string::npos);
}

}  // namespace
}  // namespace chorus
