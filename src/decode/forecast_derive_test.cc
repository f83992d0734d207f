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
  for (const char* method : {"mean", "weighted-mean", "token", "search"}) {
    SCOPED_TRACE(method);
    ForecastDeriveReport report;
    int messages = 0;
    const ForecastEmbeddings f =
        derive_forecast(*model, small(method), &report, [&](const std::string&) { ++messages; });
    EXPECT_NO_THROW(validate_forecast(f, *model));
    EXPECT_EQ(f.count, 2);
    EXPECT_EQ(f.method, std::string("derived-") + method);
    EXPECT_GT(messages, 0);
    ASSERT_EQ(report.accuracy.size(), 2u);
    for (int k = 0; k < 2; ++k) {
      // A later stage is only kept when it does better than the mean.
      EXPECT_GE(report.accuracy[k] + report.top4[k] + 1.0, report.start_accuracy[k]);
      EXPECT_GE(report.top4[k], report.accuracy[k]);
    }
    // Each stage starts where the one before ends (the search may keep
    // its start in so few iterations).
    if (std::string(method) != "search") EXPECT_NE(f.embd, prev.embd);
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
