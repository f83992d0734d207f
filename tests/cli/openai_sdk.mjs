// Drives `chorus serve` with the official OpenAI Node SDK and checks every
// answer against the texts `chorus run` gave for the same greedy requests
// (tests/cli/serve_openai_sdk.sh computes them and runs this script).
//
//   node openai_sdk.mjs SDK_ENTRY BASE_URL EXPECTED_JSON all
//   node openai_sdk.mjs SDK_ENTRY BASE_URL EXPECTED_JSON key KEY
//
// SDK_ENTRY is the SDK's ES module (node_modules/openai/index.mjs in the
// cache folder, so nothing is installed into the repository). Each check
// prints "ok: ..." or "FAIL: ..."; the exit status is 1 when any failed.
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const [sdkEntry, baseURL, expectedPath, mode, key] = process.argv.slice(2);
const { default: OpenAI } = await import(pathToFileURL(sdkEntry).href);
const want = JSON.parse(readFileSync(expectedPath, "utf8"));
let failures = 0;

// No retries: a request that fails must show, not be hidden by a second try.
const client = (apiKey) => new OpenAI({ baseURL: baseURL + "/v1", apiKey, maxRetries: 0, timeout: 60_000 });

// check(name, fn): fn throws (or returns a string: the reason) on failure.
async function check(name, fn) {
  try {
    const why = await fn();
    if (typeof why === "string") throw new Error(why);
    console.log(`ok: ${name}`);
  } catch (e) {
    failures++;
    console.error(`FAIL: ${name}: ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : e}`);
  }
}
const show = (v) => JSON.stringify(v);
function same(what, got, expected) {
  if (got !== expected) throw new Error(`${what}: got ${show(got)}, want ${show(expected)}`);
}
// expectError(fn, ErrorClass, status, fragment): fn must reject with that
// SDK error class and status, carrying the server's message.
async function expectError(fn, ErrorClass, status, fragment) {
  let err = null;
  try { await fn(); } catch (e) { err = e; }
  if (err === null) throw new Error(`no error, want ${ErrorClass.name} ${status}`);
  if (!(err instanceof ErrorClass)) throw new Error(`got ${err.constructor.name}: ${err.message}, want ${ErrorClass.name}`);
  same("status", err.status, status);
  if (!err.message.includes(fragment)) throw new Error(`message lacks ${show(fragment)}: ${err.message}`);
  return err;
}
// The greedy request every expected text was made with, and how many tokens.
const greedy = { temperature: 0, ignore_eos: true, max_tokens: want.max_tokens };
const P = want.prompt;

async function collectStream(stream, field) {  // texts by choice index, finish reasons, usage
  const texts = [], reasons = [];
  let usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      texts[c.index] = (texts[c.index] ?? "") + (field(c) ?? "");
      if (c.finish_reason) reasons[c.index] = c.finish_reason;
    }
  }
  return { texts, reasons, usage, chunks };
}

if (mode === "all") {
  const ai = client("x");

  await check("completions.create equals chorus run", async () => {
    const r = await ai.completions.create({ model: "stories260K", prompt: P, ...greedy });
    same("choices", r.choices.length, 1);
    same("text", r.choices[0].text, want.base);
    same("finish_reason", r.choices[0].finish_reason, "length");
    same("completion_tokens (ignore_eos through the SDK's body)", r.usage.completion_tokens, want.max_tokens);
    same("object", r.object, "text_completion");
  });

  await check("completions stream: deltas join to the text, finish_reason length, usage chunk", async () => {
    const s = await ai.completions.create({ model: "stories260K", prompt: P, ...greedy, stream: true,
                                            stream_options: { include_usage: true } });
    const got = await collectStream(s, (c) => c.text);
    same("joined text", got.texts[0], want.base);
    same("finish_reason", got.reasons[0], "length");
    if (got.chunks < 3) return `only ${got.chunks} chunks: not streamed`;
    same("usage.completion_tokens", got.usage?.completion_tokens, want.max_tokens);
  });

  await check("chat.completions.create equals chorus run on the fixed template", async () => {
    const r = await ai.chat.completions.create({ model: "stories260K", messages: want.chat_messages, ...greedy });
    same("role", r.choices[0].message.role, "assistant");
    same("content", r.choices[0].message.content, want.chat);
    same("finish_reason", r.choices[0].finish_reason, "length");
    same("object", r.object, "chat.completion");
  });

  await check("chat stream: deltas join to the content, finish_reason length", async () => {
    const s = await ai.chat.completions.create({ model: "stories260K", messages: want.chat_messages, ...greedy, stream: true });
    const got = await collectStream(s, (c) => c.delta?.content);
    same("joined content", got.texts[0], want.chat);
    same("finish_reason", got.reasons[0], "length");
  });

  await check("n = 2 equals chorus run --streams 2", async () => {
    const r = await ai.completions.create({ model: "stories260K", prompt: P, ...greedy, n: 2 });
    same("choices", r.choices.length, 2);
    const byIndex = [...r.choices].sort((a, b) => a.index - b.index).map((c) => c.text);
    same("texts", show(byIndex), show(want.streams2));
    if (byIndex[0] === byIndex[1]) return "the two choices are the same text";
  });

  await check("n = 2 streamed: each index joins to its text", async () => {
    const s = await ai.completions.create({ model: "stories260K", prompt: P, ...greedy, n: 2, stream: true });
    const got = await collectStream(s, (c) => c.text);
    same("texts", show(got.texts), show(want.streams2));
    same("finish_reasons", show(got.reasons), show(["length", "length"]));
  });

  await check('model "dog" equals chorus run --adapter dog', async () => {
    const r = await ai.completions.create({ model: "dog", prompt: P, ...greedy });
    same("text", r.choices[0].text, want.dog);
    same("model", r.model, "dog");
    if (want.dog === want.base) return "the adapter changed nothing: the check could not tell";
  });

  await check(`stop ${show(want.stop)}: the text ends right before it, as chorus run --stop`, async () => {
    const r = await ai.completions.create({ model: "stories260K", prompt: P, ...greedy, stop: [want.stop] });
    same("text", r.choices[0].text, want.stopped);
    same("text", r.choices[0].text, want.base.slice(0, want.base.indexOf(want.stop)));
    same("finish_reason", r.choices[0].finish_reason, "stop");
  });

  await check(`stop ${show(want.stop)} (a string, not a list) streamed: no piece of the stop text is sent`, async () => {
    const s = await ai.completions.create({ model: "stories260K", prompt: P, ...greedy, stop: want.stop, stream: true });
    const got = await collectStream(s, (c) => c.text);
    same("joined text", got.texts[0], want.stopped);
    same("finish_reason", got.reasons[0], "stop");
  });

  await check("models.list names the model and the adapter", async () => {
    const ids = [];
    for await (const m of ai.models.list()) ids.push(m.id);
    same("ids", show(ids.sort()), show(["dog", "stories260K"]));
  });

  await check('models.retrieve("dog")', async () => {
    const m = await ai.models.retrieve("dog");
    same("id", m.id, "dog");
    same("object", m.object, "model");
    same("parent", m.parent, "stories260K");
  });

  await check('models.retrieve("nope") -> NotFoundError 404', async () => {
    await expectError(() => ai.models.retrieve("nope"), OpenAI.NotFoundError, 404, "nope");
  });

  await check("max_tokens: -1 -> BadRequestError 400 with the server's message", async () => {
    const e = await expectError(() => ai.completions.create({ model: "stories260K", prompt: P, max_tokens: -1 }),
                                OpenAI.BadRequestError, 400, "'max_tokens' must be in [1, ");
    same("param", e.param, "max_tokens");
    same("type", e.type, "invalid_request_error");
  });

  await check("tools -> BadRequestError 400 naming the field", async () => {
    const e = await expectError(() => ai.chat.completions.create({
      model: "stories260K", messages: want.chat_messages, max_tokens: 2,
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }],
    }), OpenAI.BadRequestError, 400, "'tools' is not supported");
    same("param", e.param, "tools");
  });
} else if (mode === "key") {
  await check(`apiKey ${show(key)}: completions.create equals chorus run`, async () => {
    const r = await client(key).completions.create({ model: "stories260K", prompt: P, ...greedy });
    same("text", r.choices[0].text, want.base);
  });
  await check("a wrong apiKey -> AuthenticationError 401", async () => {
    await expectError(() => client(key + "-wrong").completions.create({ model: "stories260K", prompt: P, ...greedy }),
                      OpenAI.AuthenticationError, 401, "API key");
  });
  await check("a wrong apiKey on models.list -> AuthenticationError 401", async () => {
    await expectError(() => client("wrong").models.list(), OpenAI.AuthenticationError, 401, "API key");
  });
} else {
  console.error(`FAIL: unknown mode ${show(mode)}`);
  failures++;
}
process.exit(failures > 0 ? 1 : 0);
