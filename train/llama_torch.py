"""A frozen LLaMA in PyTorch with the same semantics as chorus's C++ engine.

Loads a GGUF llama model (F32/F16/BF16 and the common quantized types are
dequantized to f32), optionally merges a LoRA adapter (W' = W + s * B A),
and provides:
  - decode_step / generate: batched incremental decoding with a KV cache,
  - forward_full: causal forward over whole sequences, returning logits and
    the post-RoPE K and V rows of every layer,
  - forecast_forward: m forecast rows appended after real positions p, each
    block seeing the real prefix 0..p and its own earlier forecast rows.

RoPE follows the GGUF layout: q/k rows are permuted so that adjacent pairs
(2i, 2i+1) of each head rotate, frequency theta^(-2i/rope_dim).
"""

import json
import math
import os
import struct

import numpy as np
import torch

import gguf_io


class ModelError(Exception):
    """A model or adapter that cannot be used; the message names the file."""


class Config:
    def __init__(self, r):
        path = r.path
        arch = r.get("general.architecture")
        if arch != "llama":
            raise ModelError("%s: general.architecture is %r, want 'llama'" % (path, arch))

        def need(key):
            v = r.get(key)
            if v is None:
                raise ModelError("%s: missing metadata %s" % (path, key))
            return v

        self.dim = int(need("llama.embedding_length"))
        self.n_layers = int(need("llama.block_count"))
        self.n_heads = int(need("llama.attention.head_count"))
        self.n_kv_heads = int(r.get("llama.attention.head_count_kv", self.n_heads))
        self.hidden = int(need("llama.feed_forward_length"))
        self.rms_eps = float(r.get("llama.attention.layer_norm_rms_epsilon", 1e-5))
        self.rope_theta = float(r.get("llama.rope.freq_base", 10000.0))
        self.context_length = int(r.get("llama.context_length", 2048))
        if self.n_heads <= 0 or self.dim % self.n_heads or self.n_kv_heads <= 0 \
                or self.n_heads % self.n_kv_heads:
            raise ModelError("%s: bad head counts %d/%d for dim %d"
                             % (path, self.n_heads, self.n_kv_heads, self.dim))
        self.head_dim = int(r.get("llama.attention.key_length", self.dim // self.n_heads))
        self.rope_dim = int(r.get("llama.rope.dimension_count", self.head_dim))
        if self.rope_dim % 2 or not 2 <= self.rope_dim <= self.head_dim:
            raise ModelError("%s: bad rope dimension %d" % (path, self.rope_dim))
        scaling = r.get("llama.rope.scaling.type", "")
        factor = r.get("llama.rope.scaling.factor", r.get("llama.rope.scale_linear"))
        if scaling in ("yarn", "longrope"):
            raise ModelError("%s: rope scaling type '%s' is not supported" % (path, scaling))
        self.rope_freq_scale = 1.0
        if scaling != "none" and factor:
            self.rope_freq_scale = 1.0 / float(factor)
        tokens = r.get("tokenizer.ggml.tokens")
        if "llama.vocab_size" in r.fields:
            self.n_vocab = int(r.get("llama.vocab_size"))
        elif tokens is not None:
            self.n_vocab = len(tokens)
        else:
            self.n_vocab = r.tensors["token_embd.weight"].dims[1]
        self.bos = int(r.get("tokenizer.ggml.bos_token_id", 1))
        self.eos = int(r.get("tokenizer.ggml.eos_token_id", 2))

    @property
    def q_dim(self):
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self):
        return self.n_kv_heads * self.head_dim


# LoRA targets: GGUF stem -> PEFT module name.
LORA_TARGETS = {
    "attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "attn_output": "o_proj",
    "ffn_gate": "gate_proj", "ffn_up": "up_proj", "ffn_down": "down_proj",
}


def _permute_rows(w, n_heads):
    """HF rotate-half row order -> GGUF interleaved order (llama.cpp's converter)."""
    out = w.shape[0]
    return w.reshape(n_heads, 2, out // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def read_safetensors(path):
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ModelError("%s: not a safetensors file" % path)
        (n,) = struct.unpack("<Q", head)
        if n > 100 << 20:
            raise ModelError("%s: not a safetensors file (header of %d bytes)" % (path, n))
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise ModelError("%s: not a safetensors file (bad header)" % path)
        data = f.read()
    dtypes = {"F32": "<f4", "F16": "<f2", "BF16": "bf16", "F64": "<f8"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = dtypes.get(info["dtype"])
        if dt is None:
            raise ModelError("%s: tensor %s has unsupported dtype %s" % (path, name, info["dtype"]))
        a, b = info["data_offsets"]
        raw = np.frombuffer(data[a:b], dtype=np.uint8)
        if dt == "bf16":
            arr = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = raw.view(dt).astype(np.float32)
        out[name] = arr.reshape(info["shape"])
    return out


def load_lora(path, cfg, base_path):
    """Returns ({(layer, stem): (A [r x in], B [out x r], scale)}, name)."""
    pairs = {}
    if os.path.isdir(path) or path.endswith(".safetensors"):
        d = path if os.path.isdir(path) else os.path.dirname(path)
        st = os.path.join(d, "adapter_model.safetensors") if os.path.isdir(path) else path
        cfg_path = os.path.join(d, "adapter_config.json")
        if not os.path.isfile(st) or not os.path.isfile(cfg_path):
            raise ModelError("%s: not a PEFT adapter (needs adapter_config.json and "
                             "adapter_model.safetensors)" % path)
        with open(cfg_path) as f:
            acfg = json.load(f)
        rank = acfg.get("r", 0)
        alpha = acfg.get("lora_alpha", rank) or rank
        rslora = bool(acfg.get("use_rslora", False))
        tensors = read_safetensors(st)
        hf_to_stem = {v: k for k, v in LORA_TARGETS.items()}
        found = {}
        for name, arr in tensors.items():
            parts = name.split(".")
            if "layers" not in parts or parts[-1] != "weight" or parts[-2] not in ("lora_A", "lora_B"):
                raise ModelError("%s: unsupported tensor %s" % (st, name))
            layer = int(parts[parts.index("layers") + 1])
            module = parts[-3]
            if module not in hf_to_stem:
                raise ModelError("%s: unsupported LoRA target %s" % (st, name))
            found.setdefault((layer, hf_to_stem[module]), {})[parts[-2]] = arr
        for (layer, stem), ab in found.items():
            if set(ab) != {"lora_A", "lora_B"}:
                raise ModelError("%s: layer %d %s lacks lora_A or lora_B" % (st, layer, stem))
            a, b = ab["lora_A"], ab["lora_B"]
            if stem == "attn_q":
                b = _permute_rows(b, cfg.n_heads)
            elif stem == "attn_k":
                b = _permute_rows(b, cfg.n_kv_heads)
            r = a.shape[0]
            scale = alpha / math.sqrt(r) if rslora else alpha / r
            pairs[(layer, stem)] = (a, b, scale)
    else:
        try:
            ar = gguf_io.GGUFReader(path)
        except gguf_io.GGUFError as e:
            raise ModelError(str(e))
        if ar.get("general.type") != "adapter" or ar.get("adapter.type", "lora") != "lora":
            raise ModelError("%s: not a GGUF LoRA adapter (general.type = %r)"
                             % (path, ar.get("general.type")))
        if ar.get("general.architecture", "llama") != "llama":
            raise ModelError("%s: adapter architecture %r, want 'llama'"
                             % (path, ar.get("general.architecture")))
        alpha = float(ar.get("adapter.lora.alpha", 0.0))
        for name in ar.tensors:
            if not name.endswith(".lora_a"):
                if not name.endswith(".lora_b"):
                    raise ModelError("%s: unsupported tensor %s" % (path, name))
                continue
            stem_full = name[:-len(".lora_a")]
            parts = stem_full.split(".")
            if len(parts) != 4 or parts[0] != "blk" or parts[3] != "weight" \
                    or parts[2] not in LORA_TARGETS:
                raise ModelError("%s: unsupported LoRA tensor %s" % (path, name))
            if stem_full + ".lora_b" not in ar.tensors:
                raise ModelError("%s: %s has no matching lora_b" % (path, name))
            a = ar.tensor(name)
            b = ar.tensor(stem_full + ".lora_b")
            r = a.shape[0]
            scale = (alpha if alpha > 0 else r) / r
            pairs[(int(parts[1]), parts[2])] = (a, b, scale)
    if not pairs:
        raise ModelError("%s: adapter has no LoRA tensors" % path)
    return pairs


def _rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Llama:
    """Frozen weights as f32 torch tensors (no autograd on them)."""

    def __init__(self, path, adapter=None, adapter_scale=1.0):
        try:
            r = gguf_io.GGUFReader(path)
        except gguf_io.GGUFError as e:
            raise ModelError(str(e))
        self.path = path
        self.cfg = c = Config(r)
        self.reader = r

        def t(name, shape):
            try:
                a = r.tensor(name)
            except gguf_io.GGUFError as e:
                raise ModelError(str(e))
            if a.shape != tuple(shape):
                raise ModelError("%s: tensor %s has shape %s, want %s"
                                 % (path, name, a.shape, tuple(shape)))
            return a

        self.output_norm_np = t("output_norm.weight", (c.dim,))
        self.tok_embd = torch.from_numpy(t("token_embd.weight", (c.n_vocab, c.dim)).copy())
        self.out_norm = torch.from_numpy(self.output_norm_np.copy())
        if "output.weight" in r.tensors:
            self.out = torch.from_numpy(t("output.weight", (c.n_vocab, c.dim)).copy())
        else:
            self.out = self.tok_embd
        shapes = {
            "attn_q": (c.q_dim, c.dim), "attn_k": (c.kv_dim, c.dim), "attn_v": (c.kv_dim, c.dim),
            "attn_output": (c.dim, c.q_dim), "ffn_gate": (c.hidden, c.dim),
            "ffn_up": (c.hidden, c.dim), "ffn_down": (c.dim, c.hidden),
        }
        pairs = load_lora(adapter, c, path) if adapter else {}
        self.adapter_pairs = {k: (a, b, s * adapter_scale) for k, (a, b, s) in pairs.items()}
        self.shapes = shapes
        for (layer, stem), (a, b, _) in pairs.items():
            out_, in_ = shapes[stem]
            if layer >= c.n_layers or a.ndim != 2 or b.ndim != 2 or a.shape[1] != in_ \
                    or b.shape[0] != out_ or a.shape[0] != b.shape[1]:
                raise ModelError("%s: layer %d %s: A %s / B %s do not fit the base [%d x %d]"
                                 % (adapter, layer, stem, a.shape, b.shape, out_, in_))
        self.layers = []
        for l in range(c.n_layers):
            L = {"attn_norm": torch.from_numpy(t("blk.%d.attn_norm.weight" % l, (c.dim,)).copy()),
                 "ffn_norm": torch.from_numpy(t("blk.%d.ffn_norm.weight" % l, (c.dim,)).copy())}
            for stem, shape in shapes.items():
                w = t("blk.%d.%s.weight" % (l, stem), shape).astype(np.float32)
                if (l, stem) in pairs:
                    a, b, scale = pairs[(l, stem)]
                    w = w + (adapter_scale * scale) * (b.astype(np.float64) @ a.astype(np.float64)).astype(np.float32)
                L[stem] = torch.from_numpy(np.ascontiguousarray(w))
            self.layers.append(L)
        freq_factors = None
        if "rope_freqs.weight" in r.tensors:
            freq_factors = r.tensor("rope_freqs.weight").astype(np.float64)
        self._rope_freqs = np.array(
            [c.rope_freq_scale * c.rope_theta ** (-2.0 * i / c.rope_dim) for i in range(c.rope_dim // 2)],
            dtype=np.float64)
        if freq_factors is not None:
            self._rope_freqs = self._rope_freqs / freq_factors[: c.rope_dim // 2]
        self._cos = self._sin = None
        self._ensure_rope(min(c.context_length, 4096))

    # -- RoPE ---------------------------------------------------------------
    def _ensure_rope(self, n):
        if self._cos is not None and self._cos.shape[0] >= n:
            return
        # Angles in double precision, as the C++ engine computes them.
        ang = np.arange(n, dtype=np.float64)[:, None] * self._rope_freqs[None, :]
        self._cos = torch.from_numpy(np.cos(ang).astype(np.float32))
        self._sin = torch.from_numpy(np.sin(ang).astype(np.float32))

    def rope(self, x, pos):
        """x: (..., heads, head_dim); pos: long tensor of shape x.shape[:-2]."""
        self._ensure_rope(int(pos.max()) + 1)
        rd = self.cfg.rope_dim
        cos = self._cos[pos].unsqueeze(-2)  # (..., 1, rd/2)
        sin = self._sin[pos].unsqueeze(-2)
        xr = x[..., :rd].reshape(*x.shape[:-1], rd // 2, 2)
        x0, x1 = xr[..., 0], xr[..., 1]
        rot = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).reshape(*x.shape[:-1], rd)
        if rd == x.shape[-1]:
            return rot
        return torch.cat((rot, x[..., rd:]), dim=-1)

    # -- building blocks ----------------------------------------------------
    def _qkv(self, L, x, pos):
        c = self.cfg
        h = _rmsnorm(x, L["attn_norm"], c.rms_eps)
        q = (h @ L["attn_q"].T).reshape(*x.shape[:-1], c.n_heads, c.head_dim)
        k = (h @ L["attn_k"].T).reshape(*x.shape[:-1], c.n_kv_heads, c.head_dim)
        v = (h @ L["attn_v"].T).reshape(*x.shape[:-1], c.n_kv_heads, c.head_dim)
        return self.rope(q, pos), self.rope(k, pos), v

    def _ffn(self, L, x):
        h = _rmsnorm(x, L["ffn_norm"], self.cfg.rms_eps)
        return (torch.nn.functional.silu(h @ L["ffn_gate"].T) * (h @ L["ffn_up"].T)) @ L["ffn_down"].T

    def _group(self, q):
        """(..., n_heads, hd) -> (..., n_kv_heads, group, hd): head h uses kv head h // group."""
        c = self.cfg
        return q.reshape(*q.shape[:-2], c.n_kv_heads, c.n_heads // c.n_kv_heads, c.head_dim)

    def logits(self, x):
        return _rmsnorm(x, self.out_norm, self.cfg.rms_eps) @ self.out.T

    # -- causal forward over whole sequences ----------------------------------
    def forward_full(self, tokens):
        """tokens: (B, T) long. Returns logits (B, T, V) and per-layer K, V
        lists of (B, T, n_kv_heads, head_dim) (K after RoPE)."""
        c = self.cfg
        B, T = tokens.shape
        KV, g, hd = c.n_kv_heads, c.n_heads // c.n_kv_heads, c.head_dim
        pos = torch.arange(T).expand(B, T)
        x = self.tok_embd[tokens]
        mask = torch.full((T, T), float("-inf")).triu(1).view(T, 1, T)
        ks, vs = [], []
        scale = 1.0 / math.sqrt(hd)
        for L in self.layers:
            q, k, v = self._qkv(L, x, pos)
            ks.append(k)
            vs.append(v)
            qg = self._group(q).permute(0, 2, 1, 3, 4).reshape(B * KV, T * g, hd)
            kt = k.permute(0, 2, 3, 1).reshape(B * KV, hd, T)
            s = (torch.bmm(qg, kt) * scale).view(B * KV, T, g, T) + mask
            a = s.softmax(-1).view(B * KV, T * g, T)
            o = torch.bmm(a, v.permute(0, 2, 1, 3).reshape(B * KV, T, hd))  # (B*KV, T*g, hd)
            o = o.view(B, KV, T, g, hd).permute(0, 2, 1, 3, 4).reshape(B, T, c.q_dim)
            x = x + o @ L["attn_output"].T
            x = x + self._ffn(L, x)
        return self.logits(x), ks, vs

    # -- incremental decoding -----------------------------------------------
    def new_cache(self, B, T):
        c = self.cfg
        z = lambda: torch.zeros(B, T, c.n_kv_heads, c.head_dim)
        return {"k": [z() for _ in range(c.n_layers)], "v": [z() for _ in range(c.n_layers)], "n": 0}

    def decode_step(self, tokens, cache):
        """tokens: (B,) long at position cache['n']; returns logits (B, V)."""
        c = self.cfg
        p = cache["n"]
        B = tokens.shape[0]
        x = self.tok_embd[tokens]  # (B, D)
        pos = torch.full((B,), p, dtype=torch.long)
        scale = 1.0 / math.sqrt(c.head_dim)
        for l, L in enumerate(self.layers):
            q, k, v = self._qkv(L, x, pos)  # (B, H|KV, hd)
            cache["k"][l][:, p] = k
            cache["v"][l][:, p] = v
            kk = cache["k"][l][:, :p + 1].unsqueeze(3)  # (B, t, KV, 1, hd)
            vv = cache["v"][l][:, :p + 1].unsqueeze(3)
            s = (self._group(q).unsqueeze(1) * kk).sum(-1) * scale  # (B, t, KV, g)
            o = (s.softmax(1).unsqueeze(-1) * vv).sum(1)  # (B, KV, g, hd)
            x = x + o.reshape(B, c.q_dim) @ L["attn_output"].T
            x = x + self._ffn(L, x)
        cache["n"] = p + 1
        return self.logits(x)

    @torch.no_grad()
    def generate(self, prompts, length, temps, gen):
        """Batched generation. prompts: list of B id lists (each starting with
        BOS, forced as given); then token t+1 is sampled at temperature
        temps[b][t] (0 = greedy). Returns a (B, length) long tensor."""
        B = len(prompts)
        out = torch.zeros(B, length, dtype=torch.long)
        plen = torch.tensor([len(p) for p in prompts])
        for b, p in enumerate(prompts):
            out[b, :min(len(p), length)] = torch.tensor(p[:length])
        temps = torch.as_tensor(temps, dtype=torch.float32)
        cache = self.new_cache(B, length)
        for t in range(length - 1):
            logits = self.decode_step(out[:, t], cache)
            greedy = logits.argmax(-1)
            tt = temps[:, t].clamp(min=1e-6).unsqueeze(1)
            sampled = torch.multinomial((logits / tt).softmax(-1), 1, generator=gen)[:, 0]
            nxt = torch.where(temps[:, t] > 0, sampled, greedy)
            forced = plen > t + 1
            out[:, t + 1] = torch.where(forced, out[:, t + 1], nxt)
        return out

    # -- forecast rows ------------------------------------------------------
    def forecast_forward(self, e, ks, vs, ps, deltas=None):
        """Forecast rows after real positions.

        e: (m, D) forecast input vectors (may require grad).
        ks, vs: per-layer real K/V rows (B, T, n_kv, hd) from forward_full.
        ps: (B, P) long, the real positions p the forecasts follow.
        deltas: optional {(layer, stem): dW} added to the weights of the
        forecast rows only (a forecast LoRA); real rows keep the base weights.
        Returns logits (B, P, m, V); row k-1 sits at position p + k, sees real
        rows 0..p and forecast rows 1..k of its own block."""
        c = self.cfg
        m = e.shape[0]
        B, P = ps.shape
        T = ks[0].shape[1]
        KV, g, hd = c.n_kv_heads, c.n_heads // c.n_kv_heads, c.head_dim
        pos = ps.unsqueeze(-1) + torch.arange(1, m + 1)  # (B, P, m)
        x = e.expand(B, P, m, c.dim)
        scale = 1.0 / math.sqrt(hd)
        # real_mask[b, p, t] = 0 where t <= ps[b, p]
        real_mask = torch.where(torch.arange(T).view(1, 1, T) <= ps.unsqueeze(-1), 0.0, float("-inf"))
        real_mask = real_mask.view(B, 1, P, 1, 1, T)
        self_mask = torch.full((m, m), float("-inf")).triu(1).view(1, 1, 1, m, 1, m)
        for l, L in enumerate(self.layers):
            if deltas:
                L = dict(L)
                for stem in LORA_TARGETS:
                    if (l, stem) in deltas:
                        L[stem] = L[stem] + deltas[(l, stem)]
            q, k, v = self._qkv(L, x, pos)  # (B, P, m, H|KV, hd)
            qg = self._group(q).permute(0, 3, 1, 2, 4, 5)  # (B, KV, P, m, g, hd)
            kr = ks[l].permute(0, 2, 3, 1).reshape(B * KV, hd, T)
            vr = vs[l].permute(0, 2, 1, 3).reshape(B * KV, T, hd)
            s_real = torch.bmm(qg.reshape(B * KV, P * m * g, hd), kr).view(B, KV, P, m, g, T)
            s_real = s_real * scale + real_mask
            kf = k.permute(0, 3, 1, 2, 4).reshape(B, KV, P, 1, 1, m, hd)
            vf = v.permute(0, 3, 1, 2, 4).reshape(B, KV, P, 1, 1, m, hd)
            s_self = (qg.unsqueeze(-2) * kf).sum(-1) * scale + self_mask  # (B, KV, P, m, g, m)
            # One softmax over [real keys, own chain] without concatenating
            # them (cheaper backward): shift by the (constant) joint max.
            mx = torch.maximum(s_real.detach().amax(-1), s_self.detach().amax(-1)).unsqueeze(-1)
            er = (s_real - mx).exp()
            es = (s_self - mx).exp()
            den = er.sum(-1, keepdim=True) + es.sum(-1, keepdim=True)
            o_real = torch.bmm(er.reshape(B * KV, P * m * g, T), vr).view(B, KV, P, m, g, hd)
            o_self = (es.unsqueeze(-1) * vf).sum(-2)  # (B, KV, P, m, g, hd)
            o = ((o_real + o_self) / den).permute(0, 2, 3, 1, 4, 5).reshape(B, P, m, c.q_dim)
            x = x + o @ L["attn_output"].T
            x = x + self._ffn(L, x)
        return self.logits(x)


class Tokenizer:
    """SentencePiece-style (tokenizer.ggml.model = llama) encoder for prompts:
    a leading space, spaces as U+2581, highest-score merges first, byte
    fallback for characters outside the vocabulary."""

    def __init__(self, reader):
        if reader.get("tokenizer.ggml.model") != "llama":
            raise ModelError("%s: prompts need a llama (SentencePiece) vocabulary, found %r"
                             % (reader.path, reader.get("tokenizer.ggml.model")))
        self.tokens = list(reader.get("tokenizer.ggml.tokens"))
        scores = reader.get("tokenizer.ggml.scores")
        self.scores = list(scores) if scores is not None else [0.0] * len(self.tokens)
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.bos = int(reader.get("tokenizer.ggml.bos_token_id", 1))

    def encode(self, text, bos=True):
        text = " " + text
        syms = list(text.replace(" ", "\u2581"))
        while True:
            best, best_i = None, -1
            for i in range(len(syms) - 1):
                tid = self.ids.get(syms[i] + syms[i + 1])
                if tid is not None and (best is None or self.scores[tid] > best):
                    best, best_i = self.scores[tid], i
            if best is None:
                break
            syms[best_i:best_i + 2] = [syms[best_i] + syms[best_i + 1]]
        out = [self.bos] if bos else []
        for s in syms:
            if s in self.ids:
                out.append(self.ids[s])
            else:
                for byte in s.encode("utf-8"):
                    out.append(self.ids.get("<0x%02X>" % byte, 0))
        return out
