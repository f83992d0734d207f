// DS2D acceptance traces: the file round trip and its errors, and a replay
// whose walks accept what the trace says (record what a replay accepts and
// compare).
#include "decode/ds2d_trace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "decode/ds2d_testing.h"
#include "test_util/error_of.h"

namespace chorus {
namespace {

using namespace ds2d_testing;
using test_util::error_of;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("chorus_trace_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

TEST(AcceptanceTrace, FileRoundTrip) {
  AcceptanceTrace t;
  t.source = "stories260K, budget 16";
  t.forecasts = 6;
  t.lora_rank = 8;
  for (int i = 0; i < 70; ++i) t.accepted.push_back(static_cast<int16_t>(i % 5));
  const std::string path = temp_path("rt.txt");
  write_trace(path, t);
  const AcceptanceTrace u = read_trace(path);
  std::filesystem::remove(path);
  EXPECT_EQ(u.source, t.source);
  EXPECT_EQ(u.forecasts, 6);
  EXPECT_EQ(u.lora_rank, 8);
  EXPECT_EQ(u.accepted, t.accepted);
  EXPECT_DOUBLE_EQ(u.tau(), 3.0);  // (1 + 2 + 3 + 4 + 5) / 5
}

TEST(AcceptanceTrace, BadFilesAreErrorsNamingTheLine) {
  const std::string path = temp_path("bad.txt");
  auto with = [&](const std::string& text) {
    std::ofstream(path) << text;
    return error_of([&] { read_trace(path); });
  };
  EXPECT_NE(with("accepted 1 2\n").find("not a DS2D trace"), std::string::npos);
  EXPECT_NE(with("chorus-ds2d-trace 1\naccepted 1 x\n").find(path + ":2: accepted length 'x'"),
            std::string::npos);
  EXPECT_NE(with("chorus-ds2d-trace 1\naccepted 1 -3\n").find("'-3' is not a number"), std::string::npos);
  EXPECT_NE(with("chorus-ds2d-trace 1\ncolour blue\n").find(path + ":2: unknown key 'colour'"),
            std::string::npos);
  EXPECT_NE(with("chorus-ds2d-trace 1\nforecasts 3\n").find("holds no accepted lengths"), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_NE(error_of([&] { read_trace(path); }).find("cannot read"), std::string::npos);
}

class Ds2dReplay : public StoriesSuite {
 protected:
  // Replays `trace` over one greedy request; returns what the walks accepted.
  AcceptanceTrace replay(AcceptanceTrace trace, Ds2dStats* stats) const {
    Engine engine(*model_, engine_options());
    Ds2dOptions o;
    o.row_cost = 0;
    AcceptanceTrace got;
    o.replay = &trace;
    o.record = &got;
    MultiStreamRequest req = greedy_request(story_prompts(*model_)[1], 1, 120, model_->tokenizer.get());
    req.limits.ignore_eos = true;
    run(engine, req, ds2d_decode_loop(o, {forecast_}, stats));
    return got;
  }
};

TEST_F(Ds2dReplay, NothingAcceptedMeansOneTokenPerTree) {
  AcceptanceTrace zeros;
  zeros.accepted = {0};
  Ds2dStats stats;
  const AcceptanceTrace got = replay(zeros, &stats);
  EXPECT_EQ(stats.tokens, 119);
  EXPECT_EQ(stats.trees, 119);
  for (int16_t n : got.accepted) EXPECT_EQ(n, 0);
}

TEST_F(Ds2dReplay, WalksAcceptTheTracesLengths) {
  AcceptanceTrace trace;
  trace.accepted = {2, 0, 1, 3, 1, 0, 2, 2, 1, 4, 0, 1};
  Ds2dStats stats;
  const AcceptanceTrace got = replay(trace, &stats);
  ASSERT_EQ(static_cast<int64_t>(got.accepted.size()), stats.trees);
  // Never more than the trace asks; exactly that where the tree is deep
  // enough, which a full budget makes the common case (the first tree has
  // no forecasts yet, the last is cut by the length).
  int met = 0;
  for (size_t i = 0; i < got.accepted.size(); ++i) {
    const int want = trace.accepted[i % trace.accepted.size()];
    EXPECT_LE(got.accepted[i], want) << "tree " << i;
    met += got.accepted[i] == want;
  }
  EXPECT_GE(met, static_cast<int>(got.accepted.size() * 8 / 10)) << met << " of " << got.accepted.size();
  // The report counts what the walks accepted.
  int64_t accepted = 0;
  for (int16_t n : got.accepted) accepted += n;
  EXPECT_EQ(stats.tokens, stats.trees + accepted);
}

}  // namespace
}  // namespace chorus
