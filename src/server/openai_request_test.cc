// The OpenAI request mapping: what is accepted, what each refusal says.
#include "server/openai_request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/api_error.h"

namespace chorus::server {
namespace {

using ::testing::HasSubstr;

ServedModels served() {
  ServedModels s;
  s.base_id = "stories260K";
  s.model_path = "models/stories260K.gguf";
  s.adapters = {"dog"};
  s.max_streams = 4;
  return s;
}

OpenAiRequest parse(const std::string& body, Endpoint e = Endpoint::kCompletions) {
  return parse_openai_request(body, e, served());
}

// The refusal of `body`: "<status> <param>: <message>", or "(accepted)".
std::string refusal(const std::string& body, Endpoint e = Endpoint::kCompletions) {
  try {
    OpenAiRequest r = parse(body, e);
    fit_to_context(r, 10, 100);
  } catch (const ApiError& err) {
    return std::to_string(err.status) + " " + err.param + ": " + err.message;
  }
  return "(accepted)";
}

TEST(OpenAiRequest, Completion) {
  OpenAiRequest r =
      parse(R"({"prompt": "Once", "max_tokens": 8, "temperature": 0, "n": 2, "stop": "x"})");
  EXPECT_EQ(r.request.prompt, "Once");
  EXPECT_EQ(r.model, "stories260K");
  ASSERT_EQ(r.request.streams.size(), 2u);
  EXPECT_EQ(r.request.streams[1].first_token_rank, 1);  // distinct greedy choices
  EXPECT_EQ(r.request.stop, std::vector<std::string>{"x"});
  fit_to_context(r, 5, 100);
  EXPECT_EQ(r.request.n_predict, 8);
}

TEST(OpenAiRequest, IntegralFloatsCount) {
  OpenAiRequest r = parse(R"({"prompt": "x", "max_tokens": 8.0, "n": 1.0})");
  fit_to_context(r, 5, 100);
  EXPECT_EQ(r.request.n_predict, 8);
  EXPECT_THAT(refusal(R"({"prompt": "x", "max_tokens": 8.5})"),
              HasSubstr("'max_tokens' must be an integer"));
  EXPECT_THAT(refusal(R"({"prompt": "x", "max_tokens": 1e300})"),
              HasSubstr("'max_tokens' must be in"));
}

TEST(OpenAiRequest, AnyModelNameIsTheBaseUnlessAnAdapter) {
  OpenAiRequest r = parse(R"({"prompt": "x", "model": "gpt-3.5-turbo"})");
  EXPECT_EQ(r.model, "gpt-3.5-turbo");
  EXPECT_EQ(r.request.streams.at(0).adapter, "");
  EXPECT_EQ(parse(R"({"prompt": "x", "model": "dog"})").request.streams.at(0).adapter, "dog");
}

TEST(OpenAiRequest, ChatMessages) {
  OpenAiRequest r = parse(
      R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": null},
                       {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]})",
      Endpoint::kChat);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1].role, "assistant");
  EXPECT_EQ(r.messages[1].content, "");
  EXPECT_EQ(r.messages[2].content, "ab");
  EXPECT_THAT(refusal(R"({"messages": [{"role": "user", "content": null}]})", Endpoint::kChat),
              HasSubstr("'content' may be null only in an assistant message"));
  // Chat without max_tokens: the rest of the context.
  fit_to_context(r, 10, 100);
  EXPECT_EQ(r.request.n_predict, 90);
}

TEST(OpenAiRequest, AdaptersWithScales) {
  OpenAiRequest r =
      parse(R"({"prompt": "x", "adapters": ["stories260K", {"name": "dog", "scale": 0.5}]})");
  ASSERT_EQ(r.request.streams.size(), 2u);
  EXPECT_EQ(r.request.streams[0].adapter, "");
  EXPECT_EQ(r.request.streams[1].adapter, "dog");
  EXPECT_EQ(r.request.streams[1].adapter_scale, 0.5f);
  EXPECT_EQ(refusal(R"({"prompt": "x", "adapters": ["cat"]})"),
            "404 adapters[0]: no adapter 'cat' is loaded (adapters: dog)");
  EXPECT_THAT(refusal(R"({"prompt": "x", "adapters": [{"name": "dog", "scale": -1}]})"),
              HasSubstr("'scale' must be in [0, 100]"));
}

TEST(OpenAiRequest, StreamOptions) {
  EXPECT_TRUE(parse(R"({"prompt": "x", "stream": true, "stream_options": {"include_usage": true}})")
                  .include_usage);
  EXPECT_FALSE(parse(R"({"prompt": "x", "stream": true})").include_usage);
}

TEST(OpenAiRequest, FieldsThatWouldChangeTheAnswerAreRefusedByName) {
  for (const char* f :
       {R"("tools": [{"type": "function"}])", R"("tool_choice": "auto")", R"("functions": [{}])",
        R"("response_format": {"type": "json_object"})", R"("logit_bias": {"5": 1})",
        R"("suffix": "end")",
        R"("best_of": 3)", R"("presence_penalty": 0.5)", R"("frequency_penalty": 1)"}) {
    const std::string body = std::string(R"({"prompt": "x", )") + f + "}";
    const std::string name = std::string(f).substr(1, std::string(f).find('"', 1) - 1);
    EXPECT_EQ(refusal(body).rfind("400 " + name + ": '" + name + "' is not supported by chorus", 0),
              0u)
        << body << " -> " << refusal(body);
  }
  // Their neutral values change nothing and pass.
  EXPECT_EQ(
      refusal(R"({"prompt": "x", "tools": [], "logprobs": false, "top_logprobs": 0, "echo": false,
                        "presence_penalty": 0, "frequency_penalty": 0, "best_of": 1, "logit_bias": {},
                        "response_format": {"type": "text"}, "suffix": ""})"),
      "(accepted)");
}

// Chat: logprobs true + top_logprobs 0..20; completions: logprobs 0..5 and
// echo, not both.
TEST(OpenAiRequest, Logprobs) {
  const Endpoint chat = Endpoint::kChat;
  const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
  EXPECT_EQ(parse("{" + msgs + "}", chat).request.logprobs, -1);
  EXPECT_EQ(parse("{" + msgs + R"(, "logprobs": true})", chat).request.logprobs, 0);
  EXPECT_EQ(parse("{" + msgs + R"(, "logprobs": true, "top_logprobs": 20})", chat).request.logprobs,
            20);
  EXPECT_EQ(parse("{" + msgs + R"(, "logprobs": false, "top_logprobs": 0})", chat).request.logprobs,
            -1);
  EXPECT_EQ(refusal("{" + msgs + R"(, "logprobs": true, "top_logprobs": 21})", chat),
            "400 top_logprobs: 'top_logprobs' must be in [0, 20], got 21");
  EXPECT_EQ(refusal("{" + msgs + R"(, "logprobs": true, "top_logprobs": -1})", chat),
            "400 top_logprobs: 'top_logprobs' must be in [0, 20], got -1");
  EXPECT_EQ(refusal("{" + msgs + R"(, "top_logprobs": 3})", chat),
            "400 top_logprobs: 'top_logprobs' needs \"logprobs\": true");
  EXPECT_EQ(refusal("{" + msgs + R"(, "logprobs": 2})", chat),
            "400 logprobs: 'logprobs' must be a boolean");
  EXPECT_THAT(refusal("{" + msgs + R"(, "echo": true})", chat),
              HasSubstr("400 echo: 'echo' is not supported by chorus (chat completions do not"));

  EXPECT_EQ(parse(R"({"prompt": "x"})").request.logprobs, -1);
  EXPECT_EQ(parse(R"({"prompt": "x", "logprobs": 0})").request.logprobs, 0);
  EXPECT_EQ(parse(R"({"prompt": "x", "logprobs": 5})").request.logprobs, 5);
  EXPECT_EQ(parse(R"({"prompt": "x", "logprobs": false})").request.logprobs, -1);
  EXPECT_EQ(refusal(R"({"prompt": "x", "logprobs": 6})"),
            "400 logprobs: 'logprobs' must be in [0, 5], got 6");
  EXPECT_EQ(refusal(R"({"prompt": "x", "logprobs": true})"),
            "400 logprobs: 'logprobs' must be an integer (0..5 alternatives) in completions");
  EXPECT_THAT(refusal(R"({"prompt": "x", "top_logprobs": 2})"),
              HasSubstr("400 top_logprobs: 'top_logprobs' is a chat completions field"));
  EXPECT_TRUE(parse(R"({"prompt": "x", "echo": true})").echo);
  EXPECT_FALSE(parse(R"({"prompt": "x"})").echo);
  EXPECT_EQ(refusal(R"({"prompt": "x", "echo": true, "logprobs": 1})"),
            "400 echo: 'echo' with 'logprobs' is not supported by chorus (the prompt tokens' "
            "log-probabilities are not computed); drop one of them");
}

TEST(OpenAiRequest, RoomInTheContext) {
  EXPECT_EQ(refusal(R"({"prompt": "x", "max_tokens": 91})"),
            "400 max_tokens: max_tokens = 91 does not fit: the prompt has 10 tokens and 1 choice "
            "shares a "
            "context of 100 (at most 90)");
  EXPECT_THAT(refusal(R"({"prompt": "x", "n": 5})"), HasSubstr("'n' must be in [1, 4], got 5"));
}

}  // namespace
}  // namespace chorus::server
