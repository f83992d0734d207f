// StopMatcher: OpenAI's rule for stop strings on a stream of text pieces.
#include "api/stop_matcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chorus {
namespace {

// Feeds `pieces` one by one; returns what was given out, "|" between pushes.
std::string feed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& p : pieces) out += m.push(p) + "|";
  return out;
}

TEST(StopMatcher, CutsRightBeforeTheStopString) {
  StopMatcher m({"park"});
  EXPECT_EQ(feed(m, {"in the ", "park today"}), "in the ||");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, FindsAStringSpanningPieces) {
  StopMatcher m({"park"});
  // "pa" and "r" may still become "park": held back until "k" completes it.
  EXPECT_EQ(feed(m, {"the pa", "r", "k!"}), "the |||");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, ReleasesHeldTextWhenItCannotMatchAnyMore) {
  StopMatcher m({"park"});
  EXPECT_EQ(feed(m, {"the pa", "rty"}), "the |party|");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(feed(m, {"a p"}), "a |");
  EXPECT_EQ(m.flush(), "p");  // the end of the stream gives out what was held
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, TheFirstStopStringWins) {
  StopMatcher m({"cd", "bcde"});
  EXPECT_EQ(feed(m, {"ab", "cde"}), "a||");
  EXPECT_TRUE(m.stopped());
  StopMatcher n({"xyz", "y"});
  EXPECT_EQ(feed(n, {"axy"}), "ax|");
}

TEST(StopMatcher, HoldsTheLongestPossibleStart) {
  // The longest end of the text that starts some stop string is held back.
  StopMatcher m({"aaac", "b!"});
  EXPECT_EQ(feed(m, {"xaa"}), "x|");
  EXPECT_EQ(feed(m, {"ab"}), "aaa|");  // "aaab": no "aaac" start left; "b" may become "b!"
  EXPECT_EQ(feed(m, {"!"}), "|");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, MultibyteText) {
  StopMatcher m({"é!"});
  EXPECT_EQ(feed(m, {"caf", "é", "?"}), "caf||é?|");
  EXPECT_EQ(feed(m, {"é", "!"}), "||");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, EmptyStringsNeverMatch) {
  StopMatcher m({"", ""});
  EXPECT_FALSE(m.active());
  StopMatcher n({"", "x"});
  EXPECT_TRUE(n.active());
  EXPECT_EQ(feed(n, {"abc"}), "abc|");
}

TEST(StopMatcher, AStopAtTheVeryStart) {
  StopMatcher m({"Once"});
  EXPECT_EQ(feed(m, {"On", "ce upon"}), "||");
  EXPECT_TRUE(m.stopped());
}

}  // namespace
}  // namespace chorus
