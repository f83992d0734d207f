"""Style LoRA adapters by filtered self-distillation (helpers of lora_train.py).

The frozen base model writes a pool of stories; a style is a keyword filter
over that pool (stories that name a dog early, stories where someone is sad,
...); a LoRA trained on the stories that pass moves the model's own
distribution towards that part of itself. No external text is involved, so
the adapter cannot teach the model words or facts it does not already
produce; it re-weights what it already writes.

The target is the base model conditioned on the style, p(x | style). Up to
the token that completes the first keyword, the story's own tokens are the
targets (the only place the condition changes anything); after it,
p(x_t | x_<t, style) = p(x_t | x_<t), so the target there is the frozen base
model's whole distribution (style_batch_loss).

Everything here works on top of llama_torch.Llama (the frozen f32 model) and
gguf_io (the GGUF writer); neither is modified.
"""

import copy
import math
import os
import re

import numpy as np
import torch

import gguf_io
import llama_torch

# ---------------------------------------------------------------------------
# Styles.

# name -> (keyword regex over lower-cased text, description). A story is "in
# style" when the regex matches anywhere in it. The keywords must be words the
# 512-token vocabulary spells (they are all plain ASCII, so they always can)
# and that the base model writes often enough to leave a training set after
# filtering; lora_train.py --survey prints the rates.
STYLES = {
    "dog": (r"\b(dog|dogs|doggy|doggie|puppy|puppies|pup)\b",
            "stories about a dog or puppy"),
    "sad": (r"\b(sad|sadly|sadness|cried|cry|cries|crying|tears|upset|unhappy)\b",
            "sad stories: someone is sad, upset or crying"),
    "bird": (r"\b(bird|birds|birdie|nest)\b",
             "stories about a bird"),
    "royal": (r"\b(princess|prince|king|queen|castle|crown|royal|kingdom)\b",
              "fairy-tale stories: a princess, king, queen or castle"),
    "food": (r"\b(cake|cookie|cookies|eat|ate|eating|yummy|food|apple|apples|pie|candy|lunch|dinner)\b",
             "stories about food and eating"),
    "happy": (r"\b(laughed|laugh|laughing|giggled|smiled|smile|cheered)\b",
              "cheerful stories: laughing and smiling"),
}

# Neutral opening prompts mixed into the pool (besides plain BOS): they vary
# the stories without steering them towards any style.
POOL_PROMPTS = ["Once upon a time", "One day", "Once upon a time, there was a",
                "There was a", "Lily", "Tom", "Once", "The"]

# Prompts of the greedy-continuation check.
EVAL_PROMPTS = ["Once upon a time", "One day", "Lily and Tom", "The little girl",
                "Tim wanted to"]


def style_regex(name_or_regex):
    if name_or_regex in STYLES:
        return re.compile(STYLES[name_or_regex][0])
    return re.compile(name_or_regex)


def matches(regex, text):
    return regex.search(text.lower()) is not None


# ---------------------------------------------------------------------------
# Text.

class Detok:
    def __init__(self, reader):
        self.tokens = list(reader.get("tokenizer.ggml.tokens"))
        self.bos = int(reader.get("tokenizer.ggml.bos_token_id", 1))
        self.eos = int(reader.get("tokenizer.ggml.eos_token_id", 2))

    def first_match_token(self, ids, regex):
        """Index in ids of the token that completes the first match of regex
        in the decoded text (lower-cased), or None."""
        text, ends = "", []
        for i in ids:
            text += self._piece(i)
            ends.append(len(text))
        m = regex.search(text.lower())
        if m is None:
            return None
        for t, e in enumerate(ends):
            if e >= m.end():
                return t
        return len(ids) - 1

    def _piece(self, i):
        if i in (self.bos, self.eos) or i < 0 or i >= len(self.tokens):
            return ""
        t = self.tokens[i]
        if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            b = int(t[3:5], 16)
            return chr(b) if b < 128 else "\ufffd"
        if t.startswith("<") and t.endswith(">") and len(t) > 2:
            return ""
        return t.replace("\u2581", " ")

    def __call__(self, ids):
        out = bytearray()
        for i in ids:
            if i in (self.bos, self.eos) or i < 0 or i >= len(self.tokens):
                continue
            t = self.tokens[i]
            if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                out.append(int(t[3:5], 16))
            elif t.startswith("<") and t.endswith(">") and len(t) > 2:
                continue  # other control tokens (<unk>)
            else:
                out += t.replace("\u2581", " ").encode("utf-8")
        s = out.decode("utf-8", "replace")
        return s[1:] if s.startswith(" ") else s


def cut_story(row, bos, eos):
    """row: ids starting with BOS. The story ends where the model starts a new
    one (BOS) or ends the text (EOS); that token is kept as the last target so
    the adapter also learns where stories end."""
    for t in range(1, len(row)):
        if row[t] in (bos, eos):
            return row[:t + 1]
    return row


@torch.no_grad()
def generate(model, prompts, length, temp, gen, layers=None):
    """Batched sampling with a KV cache, like llama_torch.Llama.generate but
    about twice as fast: the cache is (B, kv_heads, T, head_dim) and
    attention uses matmul. Its greedy ids with the bundled adapters equal
    chorus's (tests/data/style_adapters_greedy_ids.txt).
    prompts: id lists starting with BOS (forced); temp 0 = greedy.
    layers: other layer weights (an adapter merged in), default the model's."""
    c = model.cfg
    layers = model.layers if layers is None else layers
    B = len(prompts)
    KV, g, hd = c.n_kv_heads, c.n_heads // c.n_kv_heads, c.head_dim
    out = torch.zeros(B, length, dtype=torch.long)
    plen = torch.tensor([len(p) for p in prompts])
    for b, p in enumerate(prompts):
        out[b, :min(len(p), length)] = torch.tensor(p[:length])
    K = [torch.zeros(B, KV, length, hd) for _ in layers]
    V = [torch.zeros(B, KV, length, hd) for _ in layers]
    W = []
    for L in layers:
        d = {s: L[s].detach().T.contiguous() for s in TARGET_NAMES.values()}
        d["attn_norm"], d["ffn_norm"] = L["attn_norm"], L["ffn_norm"]
        W.append(d)
    out_t = model.out.T.contiguous()
    scale = 1.0 / math.sqrt(hd)
    silu = torch.nn.functional.silu
    rms = llama_torch._rmsnorm
    for t in range(length - 1):
        x = model.tok_embd[out[:, t]]
        pos = torch.full((B,), t, dtype=torch.long)
        for l, L in enumerate(W):
            h = rms(x, L["attn_norm"], c.rms_eps)
            q = model.rope((h @ L["attn_q"]).view(B, c.n_heads, hd), pos)
            K[l][:, :, t] = model.rope((h @ L["attn_k"]).view(B, KV, hd), pos)
            V[l][:, :, t] = (h @ L["attn_v"]).view(B, KV, hd)
            s = torch.matmul(q.view(B, KV, g, hd), K[l][:, :, :t + 1].transpose(2, 3)) * scale
            o = torch.matmul(s.softmax(-1), V[l][:, :, :t + 1]).reshape(B, c.q_dim)
            x = x + o @ L["attn_output"]
            h = rms(x, L["ffn_norm"], c.rms_eps)
            x = x + (silu(h @ L["ffn_gate"]) * (h @ L["ffn_up"])) @ L["ffn_down"]
        logits = rms(x, model.out_norm, c.rms_eps) @ out_t
        if temp > 0:
            nxt = torch.multinomial((logits / temp).softmax(-1), 1, generator=gen)[:, 0]
        else:
            nxt = logits.argmax(-1)
        out[:, t + 1] = torch.where(plen > t + 1, out[:, t + 1], nxt)
    return out


def generate_stories(model, prompts, length, temp, gen, batch=256, layers=None):
    """One story per prompt (id lists starting with BOS), sampled at
    temperature temp (0 = greedy) and cut at the end of the story."""
    c = model.cfg
    out = []
    for i in range(0, len(prompts), batch):
        toks = generate(model, prompts[i:i + batch], length, temp, gen, layers)
        out.extend(cut_story(row, c.bos, c.eos) for row in toks.tolist())
    return out


def make_prompts(n, rng, tokenizer, bos, prompt_fraction=0.5):
    """n pool prompts: BOS alone, or BOS + one of POOL_PROMPTS."""
    enc = [tokenizer.encode(p) for p in POOL_PROMPTS]
    out = []
    for _ in range(n):
        if rng.random() < prompt_fraction:
            out.append(list(enc[int(rng.integers(len(enc)))]))
        else:
            out.append([bos])
    return out


# ---------------------------------------------------------------------------
# LoRA.

TARGET_NAMES = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
                "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}


class Lora(torch.nn.Module):
    """W' = W + (alpha / r) * B @ A per adapted projection; A [r x in] starts
    random, B [out x r] starts at zero, so training starts at the base model."""

    def __init__(self, model, rank, alpha, stems, gen):
        super().__init__()
        self.rank, self.alpha, self.stems = rank, float(alpha), list(stems)
        self.A = torch.nn.ParameterDict()
        self.B = torch.nn.ParameterDict()
        for l in range(model.cfg.n_layers):
            for stem in stems:
                out_, in_ = model.shapes[stem]
                key = "%d_%s" % (l, stem)
                self.A[key] = torch.nn.Parameter(torch.randn(rank, in_, generator=gen) / math.sqrt(in_))
                self.B[key] = torch.nn.Parameter(torch.zeros(out_, rank))

    @property
    def scale(self):
        return self.alpha / self.rank

    def pairs(self):
        """{(layer, stem): (A, B)} as numpy f32."""
        out = {}
        for key in self.A:
            l, stem = key.split("_", 1)
            out[(int(l), stem)] = (self.A[key].detach().numpy().astype(np.float32),
                                   self.B[key].detach().numpy().astype(np.float32))
        return out

    def layers(self, model):
        """The model's layer dicts with the adapted weights (differentiable)."""
        out = []
        for l, L in enumerate(model.layers):
            L = dict(L)
            for stem in self.stems:
                key = "%d_%s" % (l, stem)
                L[stem] = L[stem] + self.scale * (self.B[key] @ self.A[key])
            out.append(L)
        return out


def with_layers(model, layers):
    """A shallow copy of the frozen model that uses other layer weights."""
    if layers is None:
        return model
    m = copy.copy(model)
    m.layers = layers
    return m


def write_gguf_lora(path, lora, name, description, extra=None, ggml_type=gguf_io.GGML_F32):
    """llama.cpp's GGUF LoRA, as chorus reads it (src/model/lora_gguf.cc):
    lora_a GGUF dims [in, r], lora_b GGUF dims [r, out], F32 or F16,
    scale = alpha / r.
    The base model's q/k rows are in GGUF order and the LoRA was trained
    against them, so no permutation is needed."""
    w = gguf_io.GGUFWriter()
    w.add_string("general.architecture", "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_string("general.name", name)
    w.add_string("general.description", description)
    w.add_f32("adapter.lora.alpha", lora.alpha)
    for key, (vtype, value) in (extra or {}).items():
        w.add(key, vtype, value)
    for (l, stem), (a, b) in sorted(lora.pairs().items()):
        w.add_tensor("blk.%d.%s.weight.lora_a" % (l, stem), a, ggml_type)  # numpy [r, in] -> GGUF [in, r]
        w.add_tensor("blk.%d.%s.weight.lora_b" % (l, stem), b, ggml_type)  # numpy [out, r] -> GGUF [r, out]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    w.write(path)


# ---------------------------------------------------------------------------
# Training and evaluation.

def pad_batch(seqs, pad=0):
    """seqs: id lists. Returns tokens (B, T) and a target mask (B, T-1)."""
    T = max(len(s) for s in seqs)
    toks = torch.full((len(seqs), T), pad, dtype=torch.long)
    mask = torch.zeros(len(seqs), T - 1)
    for i, s in enumerate(seqs):
        toks[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s) - 1] = 1.0
    return toks, mask


def nll(model, seqs, layers=None, batch=32):
    """Summed next-token NLL and the number of predicted tokens over seqs."""
    m = with_layers(model, layers)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(seqs), batch):
            toks, mask = pad_batch(seqs[i:i + batch])
            logits = m.forward_full(toks)[0][:, :-1]
            lp = logits.log_softmax(-1).gather(-1, toks[:, 1:].unsqueeze(-1))[..., 0]
            total += float(-(lp * mask).sum())
            count += int(mask.sum())
    return total, count


def style_batch_loss(model, lora, seqs, firsts, kl_weight=1.0):
    """Next-token loss of the conditional model p(x | style) on in-style
    stories. Up to the token that completes the first keyword match, the
    targets are the story's own tokens (cross-entropy); after it the style
    condition is already met, so p(x_t | x_<t, style) = p(x_t | x_<t): there
    the target is the frozen base model's whole distribution (KL), which costs
    no variance and keeps the adapter fluent. firsts[i] is that token index
    in seqs[i] (None: cross-entropy everywhere)."""
    toks, mask = pad_batch(seqs)
    T = toks.shape[1]
    ce_mask = torch.zeros_like(mask)
    for i, f in enumerate(firsts):
        # target position j predicts token j + 1
        ce_mask[i, :T - 1 if f is None else f] = 1.0
    ce_mask = ce_mask * mask
    kl_mask = mask - ce_mask
    with torch.no_grad():
        base_lp = model.forward_full(toks)[0][:, :-1].log_softmax(-1)
    m = with_layers(model, lora.layers(model))
    lp = m.forward_full(toks)[0][:, :-1].log_softmax(-1)
    ce = -lp.gather(-1, toks[:, 1:].unsqueeze(-1))[..., 0]
    kl = (base_lp.exp() * (base_lp - lp)).sum(-1)
    total = (ce * ce_mask).sum() + kl_weight * (kl * kl_mask).sum()
    return total / mask.sum(), float((ce * ce_mask).sum() / ce_mask.sum().clamp(min=1)), \
        float((kl * kl_mask).sum() / kl_mask.sum().clamp(min=1))
