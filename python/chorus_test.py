"""The Python module against the reference ids: greedy decoding, streams,
the bundled style adapters, DS2D, stop strings, chat formatting,
cancellation, tokenize and errors. Run by ctest (`python`) with CHORUS_LIBRARY and CHORUS_SOURCE_DIR."""
import os
import threading
import unittest

import chorus

SRC = os.environ.get("CHORUS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), os.pardir))
MODEL = os.path.join(SRC, "models", "stories260K.gguf")
ADAPTERS = os.path.join(SRC, "models", "adapters")
STYLES = ("dog", "sad", "bird")


def reference_ids():
    with open(os.path.join(SRC, "tests", "data", "stories260K_greedy_ids.txt")) as f:
        return [int(x) for x in f.read().split()]


def style_ids():
    out = {}
    with open(os.path.join(SRC, "tests", "data", "style_adapters_greedy_ids.txt")) as f:
        for line in f:
            if line.startswith("#") or ":" not in line:
                continue
            name, ids = line.split(":", 1)
            out[name] = [int(x) for x in ids.split()]
    return out


GREEDY = dict(temperature=0, ignore_eos=True)


class ChorusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.reference = reference_ids()
        cls.styles = style_ids()
        cls.rt = chorus.Runtime(MODEL, context=512, adapter_slots=3, adapter_max_rank=8)

    @classmethod
    def tearDownClass(cls):
        cls.rt.close()

    def test_reference_files(self):
        self.assertEqual(len(self.reference), 100)
        self.assertEqual(sorted(self.styles), sorted(STYLES))
        self.assertTrue(all(len(ids) == 100 for ids in self.styles.values()))

    def test_greedy_from_bos_gives_the_reference_ids(self):
        r = self.rt.generate("", n_predict=100, **GREEDY)
        self.assertEqual(r.streams[0].tokens, self.reference)
        self.assertEqual(r.streams[0].finish, "length")
        self.assertEqual(r.prompt_tokens, [1])
        self.assertEqual(r.streams[0].text, self.rt.detokenize(self.reference))
        self.assertEqual(r.timings["generated_tokens"], 100)

    def test_streams_by_first_token_rank_and_callback(self):
        pieces = {0: [], 1: []}
        r = self.rt.generate("", n_predict=100, streams=[chorus.Stream(first_token_rank=0),
                                                          chorus.Stream(first_token_rank=1)],
                             on_token=lambda s, t, p: pieces[s].append(p), **GREEDY)
        self.assertEqual(r.streams[0].tokens, self.reference)
        self.assertNotEqual(r.streams[1].tokens[0], self.reference[0])
        for s in (0, 1):
            self.assertEqual("".join(pieces[s]), r.streams[s].text)

    def test_seeds(self):
        streams = [chorus.Stream(seed=11), chorus.Stream(suffix=" there was a dog")]
        a = self.rt.generate("Once upon a time", n_predict=30, temperature=0.9, streams=streams)
        b = self.rt.generate("Once upon a time", n_predict=30, temperature=0.9, streams=streams, seed=5)
        self.assertEqual(a.streams[0].tokens, b.streams[0].tokens)
        self.assertNotEqual(a.streams[1].tokens, b.streams[1].tokens)

    def test_style_adapters_give_their_reference_ids_side_by_side(self):
        for name in STYLES:
            self.rt.load_adapter(name, os.path.join(ADAPTERS, name + ".gguf"))
        try:
            self.assertEqual(sorted(self.rt.adapters()), sorted(STYLES))
            r = self.rt.generate("Once upon a time", n_predict=100,
                                 streams=[chorus.Stream(adapter=n) for n in STYLES] + [chorus.Stream()],
                                 **GREEDY)
            for name, s in zip(STYLES, r.streams):
                self.assertEqual(s.adapter, name)
                self.assertEqual(s.tokens, self.styles[name], name)
            base = r.streams[3].tokens
            self.assertTrue(all(base != self.styles[n] for n in STYLES))
            # A per-request scale of 0 turns dog off for that request only.
            r = self.rt.generate("Once upon a time", n_predict=100,
                                 streams=[chorus.Stream(adapter="dog", adapter_scale=0.0)], **GREEDY)
            self.assertEqual(r.streams[0].tokens, base)
            r = self.rt.generate("Once upon a time", n_predict=100, streams=[chorus.Stream(adapter="dog")],
                                 **GREEDY)
            self.assertEqual(r.streams[0].tokens, self.styles["dog"])
            # Scale 0 turns an adapter off.
            self.rt.set_adapter_scale("dog", 0.0)
            r = self.rt.generate("Once upon a time", n_predict=100, streams=[chorus.Stream(adapter="dog")],
                                 **GREEDY)
            self.assertEqual(r.streams[0].tokens, base)
        finally:
            for name in STYLES:
                self.rt.unload_adapter(name)
        self.assertEqual(self.rt.adapters(), [])

    def test_stop_string(self):
        stop = self.rt.detokenize(self.reference[20:22])
        r = self.rt.generate("", n_predict=100, stop=[stop], **GREEDY)
        s = r.streams[0]
        self.assertEqual(s.finish, "stop")
        self.assertLessEqual(len(s.tokens), 22)
        self.assertEqual(s.tokens, self.reference[:len(s.tokens)])
        # The text ends right before the stop string, and the pieces handed
        # to the callback never include any of it.
        full = self.rt.generate("", n_predict=100, **GREEDY).streams[0].text
        pieces = []
        r = self.rt.generate("", n_predict=100, stop=[stop], on_token=lambda st, t, p: pieces.append(p),
                             **GREEDY)
        self.assertEqual(r.streams[0].text, full[:full.index(stop)])
        self.assertEqual("".join(pieces), r.streams[0].text)

    def test_tokenize_and_detokenize(self):
        self.assertEqual(self.rt.tokenize("Once upon a time"), [1, 403, 407, 261, 378])
        self.assertEqual(self.rt.tokenize("Once upon a time", add_bos=False), [403, 407, 261, 378])
        self.assertEqual(self.rt.detokenize([1, 403, 407, 261, 378]), "Once upon a time")

    def test_info(self):
        info = self.rt.info()
        self.assertEqual(info["n_vocab"], 512)
        self.assertEqual(info["context"], 512)
        self.assertTrue(info["kernels"])
        self.assertEqual(info["ds2d"], 0)
        self.assertEqual(info["kv_type"], "f16")
        with chorus.Runtime(MODEL, context=512, kv_type="f32") as rt:
            self.assertEqual(rt.info()["kv_type"], "f32")
            self.assertEqual(rt.info()["kv_bytes"], 2 * info["kv_bytes"])
            self.assertEqual(rt.generate("", n_predict=100, **GREEDY).streams[0].tokens, self.reference)
        self.assertEqual(chorus.version(), "0.1.0")

    def test_chat_format(self):
        conversation = [{"role": "system", "content": "Tell a story."},
                        {"role": "user", "content": "Once upon a time"}]
        text, add_bos = self.rt.chat_format(conversation, template="chatml")
        self.assertEqual(text, "<|im_start|>system\nTell a story.<|im_end|>\n<|im_start|>user\n"
                               "Once upon a time<|im_end|>\n<|im_start|>assistant\n")
        self.assertTrue(add_bos)
        text, add_bos = self.rt.chat_format(conversation[1:], template="llama2")
        self.assertEqual((text, add_bos), ("<s>[INST] Once upon a time [/INST]", False))
        r = self.rt.generate(text, n_predict=4, add_bos=add_bos, parse_special=True, **GREEDY)
        self.assertEqual(r.prompt_tokens[0], 1)
        self.assertNotEqual(r.prompt_tokens[1], 1)
        with self.assertRaisesRegex(chorus.Error, "the model has no chat template"):
            self.rt.chat_format(conversation)
        with self.assertRaisesRegex(chorus.Error, "System role not supported"):
            self.rt.chat_format(conversation, template="gemma")

    def test_cancel_from_another_thread(self):
        started, cancelled = threading.Event(), threading.Event()

        def hold(stream, token, piece):
            started.set()
            cancelled.wait(30)

        def cancel():
            started.wait(30)
            self.rt.cancel()
            cancelled.set()

        t = threading.Thread(target=cancel)
        t.start()
        r = self.rt.generate("", n_predict=-1, on_token=hold, **GREEDY)
        t.join()
        self.assertEqual(r.streams[0].finish, "cancelled")
        self.assertLessEqual(len(r.streams[0].tokens), 2)

    def test_errors(self):
        with self.assertRaisesRegex(chorus.Error, "/nonexistent/model.gguf"):
            chorus.Runtime("/nonexistent/model.gguf")
        with self.assertRaisesRegex(chorus.Error, "ds2d: must be off, on or auto, got 'maybe'"):
            chorus.Runtime(MODEL, ds2d="maybe")
        with self.assertRaisesRegex(chorus.Error, "kv_type: unknown KV cache type 'q8'"):
            chorus.Runtime(MODEL, kv_type="q8")
        with self.assertRaisesRegex(chorus.Error, "adapter_scale needs an adapter"):
            self.rt.generate("x", streams=[chorus.Stream(adapter_scale=0.5)])
        with self.assertRaisesRegex(TypeError, "unknown setting 'temprature'"):
            self.rt.generate("x", temprature=0)
        with self.assertRaisesRegex(chorus.Error, "no adapter named 'missing'"):
            self.rt.generate("x", streams=[chorus.Stream(adapter="missing")])
        with self.assertRaisesRegex(chorus.Error, "chorus_detokenize: id 9999 at 0 is not in the vocabulary"):
            self.rt.detokenize([9999])
        with self.assertRaisesRegex(chorus.Error, "/nonexistent/adapter.gguf"):
            self.rt.load_adapter("x", "/nonexistent/adapter.gguf")
        with self.assertRaisesRegex(ZeroDivisionError, "from the callback"):
            def boom(*_):
                raise ZeroDivisionError("from the callback")
            self.rt.generate("x", n_predict=4, on_token=boom)


class Ds2dTest(unittest.TestCase):
    def test_ds2d_equals_plain_with_a_report(self):
        forecasts = [os.path.join(SRC, "models", "stories260K.forecast-lora.gguf"),
                     os.path.join(ADAPTERS, "dog.forecast.gguf")]
        with chorus.Runtime(MODEL, context=256, adapter_slots=1, adapter_max_rank=8, ds2d="on",
                            ds2d_forecasts=forecasts, ds2d_row_cost=0) as rt:
            self.assertEqual(rt.info()["ds2d"], 1)
            rt.load_adapter("dog", os.path.join(ADAPTERS, "dog.gguf"))
            streams = [chorus.Stream(), chorus.Stream(adapter="dog")]
            spec = rt.generate("Once upon a time", n_predict=100, streams=streams, **GREEDY)
            plain = rt.generate("Once upon a time", n_predict=100, streams=streams, speculate=False, **GREEDY)
            self.assertEqual([s.tokens for s in spec.streams], [s.tokens for s in plain.streams])
            self.assertEqual(spec.streams[1].tokens, style_ids()["dog"])
            self.assertGreater(spec.ds2d.tau, 1.0)
            self.assertGreater(spec.ds2d.trees, 0)
            self.assertTrue(spec.ds2d.acceptance)
            self.assertEqual(plain.ds2d.trees, 0)

    def test_ds2d_auto_falls_back_and_says_why(self):
        with chorus.Runtime(MODEL, context=256, ds2d="auto", ds2d_budget=100000) as rt:
            r = rt.generate("", n_predict=20, **GREEDY)
            self.assertIn("ds2d budget: must be 1..256", r.ds2d.fallback)
            self.assertEqual(r.streams[0].tokens, reference_ids()[:20])


if __name__ == "__main__":
    unittest.main()
