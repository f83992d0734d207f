// The chat formatter against what Python's jinja2 renders from the real
// templates (tests/data/chat_templates/expected.json, written by render.py
// there), byte for byte, plus recognition, naming and the error messages.
#include "chat/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util/error_of.h"
#include "util/error.h"

namespace chorus::chat {
namespace {

using test_util::error_of;

const std::string kDir = std::string(CHORUS_SOURCE_DIR) + "/tests/data/chat_templates/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<Message> to_messages(const nlohmann::json& conversation) {
  std::vector<Message> messages;
  for (const auto& m : conversation) messages.push_back({m["role"], m["content"]});
  return messages;
}

TEST(ChatTemplate, RendersWhatJinjaRenders) {
  const nlohmann::json vectors = nlohmann::json::parse(read_file(kDir + "expected.json"));
  const auto& conversations = vectors["conversations"];
  int rendered = 0, raised = 0;
  for (const auto& c : vectors["cases"]) {
    const std::string file = c["template"];
    const ChatTemplate t = recognise_template(read_file(kDir + file), file);
    ASSERT_EQ(family_name(t.family), c["name"].get<std::string>()) << file;
    const std::vector<Message> messages = to_messages(conversations[c["conversation"].get<int>()]);
    RenderOptions o;
    o.add_generation_prompt = c["add_generation_prompt"];
    o.bos_token = c["bos_token"];
    o.eos_token = c["eos_token"];
    const std::string what = fmt::format("{} conversation {} add_generation_prompt {}", file,
                                         c["conversation"].get<int>(), o.add_generation_prompt);
    if (c.contains("expected")) {
      EXPECT_EQ(render(t, messages, o), c["expected"].get<std::string>()) << what;
      ++rendered;
    } else {
      const std::string error = error_of([&] { render(t, messages, o); });
      EXPECT_NE(error.find(c["error"].get<std::string>()), std::string::npos)
          << what << ": " << error;
      EXPECT_NE(error.find("chat template " + c["name"].get<std::string>()), std::string::npos)
          << error;
      ++raised;
    }
  }
  // Every family renders and most raise somewhere: the vectors cover both.
  EXPECT_GT(rendered, 400);
  EXPECT_GT(raised, 100);
}

// A name gives the template of that family's file when the file adds
// nothing of its own (a default system prompt, empty system turns left out).
TEST(ChatTemplate, NamesRenderAsTheirTemplates) {
  const nlohmann::json vectors = nlohmann::json::parse(read_file(kDir + "expected.json"));
  int compared = 0;
  for (const auto& c : vectors["cases"]) {
    const std::string file = c["template"];
    const ChatTemplate from_file = recognise_template(read_file(kDir + file), file);
    if (!from_file.default_system.empty() || from_file.skip_empty_system || !c.contains("expected"))
      continue;
    const ChatTemplate named = template_by_name(c["name"].get<std::string>());
    RenderOptions o;
    o.add_generation_prompt = c["add_generation_prompt"];
    o.bos_token = c["bos_token"];
    o.eos_token = c["eos_token"];
    const auto messages = to_messages(vectors["conversations"][c["conversation"].get<int>()]);
    EXPECT_EQ(render(named, messages, o), c["expected"].get<std::string>()) << file;
    ++compared;
  }
  EXPECT_GT(compared, 300);
}

TEST(ChatTemplate, FilesCarryTheirQuirks) {
  const ChatTemplate smol = recognise_template(read_file(kDir + "smollm2.jinja"), "smollm2");
  EXPECT_EQ(smol.default_system,
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_FALSE(smol.writes_bos);
  EXPECT_EQ(describe(smol),
            "chatml (default system prompt: \"You are a helpful AI assistant named SmolLM, trained "
            "by Hugging Face\")");
  const ChatTemplate qwen = recognise_template(read_file(kDir + "qwen2.5.jinja"), "qwen");
  EXPECT_TRUE(qwen.chatml_tool_form);
  EXPECT_EQ(qwen.default_system,
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(describe(qwen),
            "chatml (tool-calling form) (default system prompt: \"You are Qwen, created by Alibaba "
            "Cloud. You are a helpful assistant.\")");
  EXPECT_TRUE(recognise_template(read_file(kDir + "phi3.5.jinja"), "p").skip_empty_system);
  EXPECT_FALSE(recognise_template(read_file(kDir + "phi3.jinja"), "p").skip_empty_system);
  EXPECT_TRUE(recognise_template(read_file(kDir + "gemma.jinja"), "g").writes_bos);
  EXPECT_FALSE(recognise_template(read_file(kDir + "zephyr.jinja"), "z").writes_bos);
}

// The first Llama 3 template opened the assistant turn unconditionally.
TEST(ChatTemplate, Llama3WithoutGenerationPromptCondition) {
  const ChatTemplate t = recognise_template(
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
      "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
      "trim "
      "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif "
      "%}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
      "t");
  EXPECT_TRUE(t.always_generation_prompt);
  RenderOptions o{false, "<|begin_of_text|>", "<|eot_id|>"};
  const std::vector<Message> m = {{"user", " Hi "}};
  EXPECT_EQ(render(t, m, o),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// Templates near a family but formatting differently must not be taken for it.
TEST(ChatTemplate, NearMissesAreNotRecognised) {
  const char* near_misses[] = {
      // Llama 3.1: a dated system header.
      "{{- bos_token }}{%- set date_string = \"26 Jul 2024\" %}{{- \"Cutting Knowledge Date: "
      "December 2023\\n\" }}<|start_header_id|><|eot_id|>",
      // The first Phi-3-mini template: no system turns, the assistant header after each user turn.
      "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') "
      "%}{{'<|user|>' + "
      "'\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif "
      "(message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% "
      "endfor %}",
      // Zephyr markers on one line: no newline after each turn.
      "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\\n' + "
      "message['content'] + eos_token }}{% elif message['role'] == 'system' %}{{ '<|system|>\\n' + "
      "message['content'] + eos_token }}{% endif %}{% endfor %}",
      // ChatML with tool calls, not in Qwen2.5's form.
      "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- endif %}{{- '<|im_start|>' + message.role "
      "+ '\\n' + message.content + '<|im_end|>' + '\\n' }}",
      // Gemma 3 folds the system turn into the first user turn.
      "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = "
      "messages[0]['content'] + '\n\n' -%}{%- endif -%}<start_of_turn>",
      "",
      "Hello {{ name }}",
  };
  for (const char* t : near_misses) {
    const std::string e = error_of([&] { recognise_template(t, "tokenizer.chat_template"); });
    EXPECT_NE(e.find("tokenizer.chat_template: not a chat template chorus recognises; pass "
                     "--chat-template NAME (one of: chatml, llama2, llama3, zephyr, mistral-v0.1, "
                     "mistral-v0.2, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, gemma, "
                     "phi3)"),
              std::string::npos)
        << t << "\n"
        << e;
  }
}

TEST(ChatTemplate, ChoosesNameFileOrModel) {
  EXPECT_EQ(choose_template("gemma", "").family, Family::kGemma);
  // A name wins over the model's own template.
  EXPECT_EQ(choose_template("chatml", read_file(kDir + "llama2.jinja")).family, Family::kChatml);
  EXPECT_EQ(choose_template(kDir + "mistral-v3-tekken.jinja", "").family, Family::kMistralV3Tekken);
  EXPECT_EQ(choose_template("", read_file(kDir + "llama3.jinja")).family, Family::kLlama3);

  EXPECT_EQ(error_of([] { choose_template("", ""); }),
            "--chat-template: the model has no chat template (tokenizer.chat_template); pass "
            "--chat-template NAME (one of: chatml, llama2, llama3, zephyr, mistral-v0.1, "
            "mistral-v0.2, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, gemma, phi3)");
  EXPECT_NE(error_of([] {
              choose_template("vicuna", "");
            }).find("--chat-template: 'vicuna' is neither a template name (one of: chatml, "),
            std::string::npos);
  EXPECT_NE(error_of([] {
              choose_template(kDir + "render.py", "");
            }).find("render.py: not a chat template chorus recognises; pass --chat-template NAME"),
            std::string::npos);
  EXPECT_NE(
      error_of([] { template_by_name("llama"); }).find("no template named 'llama' (one of: chatml"),
      std::string::npos);
}

// BOS is added by the tokenizer only when the template did not write it.
TEST(ChatTemplate, ChatPromptAddsBosOnce) {
  const std::vector<Message> m = {{"user", "Hi"}};
  const RenderOptions o{true, "<s>", "</s>"};
  const ChatPrompt llama2 = chat_prompt(template_by_name("llama2"), m, o);
  EXPECT_EQ(llama2.text, "<s>[INST] Hi [/INST]");
  EXPECT_FALSE(llama2.add_bos);
  const ChatPrompt chatml = chat_prompt(template_by_name("chatml"), m, o);
  EXPECT_EQ(chatml.text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_TRUE(chatml.add_bos);
  EXPECT_TRUE(chat_prompt(template_by_name("llama2"), m, {true, "", ""}).add_bos);
}

TEST(ChatTemplate, EmptyConversationIsAnError) {
  for (const std::string& name : template_names()) {
    const std::string e = error_of([&] { render(template_by_name(name), {}, {}); });
    EXPECT_EQ(e, "chat template " + name + ": the conversation has no messages");
  }
}

TEST(ChatTemplate, EveryNameRoundTrips) {
  for (const std::string& name : template_names()) {
    EXPECT_EQ(family_name(template_by_name(name).family), name);
  }
}

TEST(PythonStrip, StripsUnicodeWhitespace) {
  EXPECT_EQ(python_strip("  a b \n\t"), "a b");
  EXPECT_EQ(python_strip("\u00a0\u3000x\u2028\u0085"), "x");
  EXPECT_EQ(python_strip("\x1c\x1fx\x0b\x0c"), "x");
  EXPECT_EQ(python_strip("   "), "");
  EXPECT_EQ(python_strip(""), "");
  EXPECT_EQ(python_strip("\u200bx\u200b"), "\u200bx\u200b");  // zero-width space is not whitespace
  // Not valid UTF-8: the bytes are kept, spaces beside them still go.
  EXPECT_EQ(python_strip(" \xc2 "), "\xc2");
  EXPECT_EQ(python_strip("\xa0x\xa0"), "\xa0x\xa0");
  EXPECT_EQ(python_strip("\xc0\xa0x"), "\xc0\xa0x");  // overlong encoding of a space
  EXPECT_EQ(python_strip("x\xe3\x80"), "x\xe3\x80");  // cut multi-byte character
}

}  // namespace
}  // namespace chorus::chat
