#!/usr/bin/python3
"""Trains DS2D forecast embeddings for a frozen LLaMA GGUF model.

Self-distillation, no external data: the model writes its own text (greedy
continuations of short sampled prefixes, and text sampled at temperature
0.7-1.0), then m forecast vectors e_1..e_m are learned with every base weight
frozen. Forecast row k replaces the token embedding by e_k, sits at position
p + k after a real row at p, sees the real prefix 0..p and forecast rows
1..k; its target is the model's own next-token distribution at real row
p + k (which predicts position p + k + 1). The result is a small GGUF that
chorus's DS2D decoder reads (train/README.md describes the format).

With --lora-rank R the forecast rows (never the real rows) also get a
trained LoRA, written as a standard GGUF LoRA next to the forecast file: on
small models the embeddings alone forecast poorly (see train/README.md).

Usage:
  /usr/bin/python3 train/forecast_train.py -m models/stories260K.gguf \
      -o models/stories260K.forecast.gguf --count 6 --steps 600 --seed 1
"""

import argparse
import os
import sys
import time

PROG = "forecast_train"


def die(msg, code=1):
    print("%s: error: %s" % (PROG, msg), file=sys.stderr)
    sys.exit(code)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2 (usage error)
        die(message + " (see --help)", 2)


LORA_TARGET_NAMES = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
                     "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}


def parse_args(argv):
    p = _Parser(prog=PROG, description="Train DS2D forecast embeddings for a frozen GGUF llama model "
                "by self-distillation and write chorus's forecast GGUF.")
    p.add_argument("-m", "--model", required=True, help="base model (GGUF, general.architecture = llama)")
    p.add_argument("-o", "--output", required=True, help="forecast GGUF to write")
    p.add_argument("--count", type=int, default=6, help="number of forecast rows m (default 6)")
    p.add_argument("--steps", type=int, default=800, help="optimizer steps (default 800)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--adapter", default="", help="task LoRA active during training and generation "
                   "(PEFT directory or llama.cpp GGUF LoRA); the forecasts are tied to it")
    p.add_argument("--adapter-scale", type=float, default=1.0, help="user scale of --adapter (default 1)")
    p.add_argument("--adapter-name", default=None,
                   help="name written to chorus.forecast.adapter; chorus gives the file to streams bound "
                   "to the --lora NAME equal to it (default: --adapter's file name without .gguf, or "
                   "its directory name)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--lora-rank", type=int, default=0,
                   help="also train a LoRA of this rank used by forecast rows only (default 0: off)")
    p.add_argument("--lora-targets", default="q,k,v,o,gate,up,down",
                   help="projections of the forecast LoRA (default q,k,v,o,gate,up,down)")
    p.add_argument("--lora-output", default="",
                   help="where to write the forecast LoRA (default: OUTPUT with .gguf -> .lora.gguf)")
    p.add_argument("--lora-lr", type=float, default=0.01, help="learning rate of the forecast LoRA (default 0.01)")
    p.add_argument("--lora-type", default="f32", choices=("f32", "f16"),
                   help="tensor type of the written forecast LoRA (default f32; chorus holds adapters as "
                   "f16 in its slots, so f16 halves the file at no cost to the engine)")
    p.add_argument("--train-seqs", type=int, default=320, help="generated training sequences (default 320)")
    p.add_argument("--eval-seqs", type=int, default=32, help="held-out sequences per eval set (default 32)")
    p.add_argument("--seq-len", type=int, default=256, help="tokens per generated sequence (default 256)")
    p.add_argument("--greedy-fraction", type=float, default=0.5,
                   help="share of training sequences that are greedy continuations (default 0.5)")
    p.add_argument("--perturb", type=float, default=0.1,
                   help="in greedy training text, chance that a token is sampled instead (default 0.1)")
    p.add_argument("--batch", type=int, default=8, help="sequences per step (default 8)")
    p.add_argument("--positions", type=int, default=32, help="positions p per sequence per step (default 32)")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate of the embeddings (default 0.05)")
    p.add_argument("--target-temp", type=float, default=0.5,
                   help="temperature of the teacher distributions (default 0.5; lower = closer to argmax)")
    p.add_argument("--eval-every", type=int, default=100, help="steps between progress evaluations (default 100)")
    p.add_argument("--prompts", default="", help="optional prompt file (one prompt per line) mixed "
                   "into the prompts of the generated training text")
    p.add_argument("--eval-prompts", default="", help="optional prompt file (one per line): also report "
                   "acceptance on greedy continuations of these prompts")
    p.add_argument("--quiet", action="store_true", help="only the final table")
    a = p.parse_args(argv)
    if not 1 <= a.count <= 256:
        die("--count must be in 1..256, got %d" % a.count, 2)
    if a.steps < 0:
        die("--steps must be >= 0, got %d" % a.steps, 2)
    if not 1 <= a.threads <= 64:
        die("--threads must be in 1..64, got %d" % a.threads, 2)
    if a.train_seqs < 1 or a.eval_seqs < 1 or a.batch < 1 or a.positions < 1:
        die("--train-seqs, --eval-seqs, --batch and --positions must be >= 1", 2)
    if a.seq_len < a.count + 8:
        die("--seq-len must be at least --count + 8 = %d, got %d" % (a.count + 8, a.seq_len), 2)
    if not 0.0 <= a.greedy_fraction <= 1.0:
        die("--greedy-fraction must be in [0, 1], got %g" % a.greedy_fraction, 2)
    if not 0.0 <= a.perturb <= 1.0:
        die("--perturb must be in [0, 1], got %g" % a.perturb, 2)
    if not (a.lr > 0 and a.lora_lr > 0 and a.target_temp > 0):
        die("--lr, --lora-lr and --target-temp must be > 0", 2)
    if a.eval_every < 1:
        die("--eval-every must be >= 1", 2)
    if not 0 <= a.lora_rank <= 1024:
        die("--lora-rank must be in 0..1024, got %d" % a.lora_rank, 2)
    targets = [t.strip() for t in a.lora_targets.split(",") if t.strip()]
    bad = [t for t in targets if t not in LORA_TARGET_NAMES]
    if bad or not targets:
        die("--lora-targets: unknown projection(s) %s (use q,k,v,o,gate,up,down)" % ",".join(bad), 2)
    a.lora_stems = [LORA_TARGET_NAMES[t] for t in targets]
    if a.lora_rank and not a.lora_output:
        base = a.output[:-5] if a.output.endswith(".gguf") else a.output
        a.lora_output = base + ".lora.gguf"
    if a.lora_output and os.path.abspath(a.lora_output) == os.path.abspath(a.output):
        die("--lora-output must differ from --output", 2)
    for f in (a.prompts, a.eval_prompts):
        if f and not os.path.isfile(f):
            die("%s: no such prompts file" % f)
    if a.adapter and not os.path.exists(a.adapter):
        die("%s: no such adapter" % a.adapter)
    if a.adapter_name is not None and not a.adapter:
        die("--adapter-name needs --adapter", 2)
    return a


def adapter_name(args):
    """chorus.forecast.adapter: "" for the base model, else --adapter-name or
    the adapter's file name without .gguf (a PEFT directory: its name), the
    name chorus run's --lora NAME=PATH usually gives it."""
    if not args.adapter:
        return ""
    if args.adapter_name is not None:
        return args.adapter_name
    name = os.path.basename(os.path.normpath(args.adapter))
    return name[:-5] if name.endswith(".gguf") and len(name) > 5 else name


def log(args, *msg):
    if not args.quiet:
        print(*msg, flush=True)


# ---------------------------------------------------------------------------
# Self-generated text.

def read_prompts(path, tokenizer, max_tokens):
    lines = [l.strip() for l in open(path, encoding="utf-8", errors="replace")]
    return [tokenizer.encode(l)[:max_tokens] for l in lines if l]


def make_plan(n, rng, greedy_fraction, seq_len, file_prompts, bos, perturb=0.0, prefix=(0, 32)):
    """Per sequence: (prompt ids, temperature per position, first position p
    whose successor the model chose greedily; seq_len for sampled text).

    Greedy sequences start with a short sampled prefix (prefix[0]..prefix[1]
    tokens at temperature 1, or a line of the prompt file), then decode
    greedily, except that each token is sampled with probability `perturb`:
    the text stays locally greedy while leaving the few stories that pure
    greedy decoding falls into, as greedy decoding of a real prompt does."""
    plan = []
    for _ in range(n):
        greedy = rng.random() < greedy_fraction
        if file_prompts and rng.random() < 0.5:
            prompt = list(file_prompts[int(rng.integers(len(file_prompts)))])
            n_sampled = 0
        else:
            prompt = [bos]
            n_sampled = int(rng.integers(prefix[0], prefix[1] + 1))
        start = len(prompt) - 1 + n_sampled
        temps = []
        for t in range(seq_len):
            if t < start:
                temps.append(1.0)
            elif greedy:
                temps.append(1.0 if rng.random() < perturb else 0.0)
            else:
                temps.append(float(rng.uniform(0.7, 1.0)))
        plan.append((prompt, temps, start if greedy and perturb == 0 else seq_len))
    return plan


def generate(model, plan, seq_len, gen, batch=64):
    import torch
    out = []
    for i in range(0, len(plan), batch):
        chunk = plan[i:i + batch]
        out.append(model.generate([c[0] for c in chunk], seq_len, [c[1] for c in chunk], gen))
    return torch.cat(out)


class Teacher:
    """Real-row K/V of every layer and the model's next-token log-probs."""

    def __init__(self, model, tokens, target_temp, chunk=16):
        import torch
        ks = [[] for _ in model.layers]
        vs = [[] for _ in model.layers]
        logp, greedy = [], []
        with torch.no_grad():
            for i in range(0, tokens.shape[0], chunk):
                logits, k, v = model.forward_full(tokens[i:i + chunk])
                for l in range(len(model.layers)):
                    ks[l].append(k[l])
                    vs[l].append(v[l])
                logp.append((logits / target_temp).log_softmax(-1))
                greedy.append(logits.argmax(-1))
        self.tokens = tokens
        self.ks = [torch.cat(x) for x in ks]
        self.vs = [torch.cat(x) for x in vs]
        self.logp = torch.cat(logp)  # (N, T, V): row p predicts position p + 1
        self.greedy = torch.cat(greedy)  # (N, T): the model's greedy token at p + 1

    def subset(self, idx):
        return [k[idx] for k in self.ks], [v[idx] for v in self.vs]


# ---------------------------------------------------------------------------
# Forecast LoRA (forecast rows only).

class ForecastLora:
    def __init__(self, model, rank, stems, gen):
        import torch
        self.rank = rank
        self.A, self.B = {}, {}
        for l in range(model.cfg.n_layers):
            for stem in stems:
                out_, in_ = model.shapes[stem]
                # B = 0: training starts from the base model's behaviour.
                self.A[(l, stem)] = torch.nn.Parameter(torch.randn(rank, in_, generator=gen) / in_ ** 0.5)
                self.B[(l, stem)] = torch.nn.Parameter(torch.zeros(out_, rank))

    def parameters(self):
        return list(self.A.values()) + list(self.B.values())

    def deltas(self):
        return {k: self.B[k] @ self.A[k] for k in self.A}


def write_lora(path, model, flora, task_pairs, n_layers, f16=False):
    """A llama.cpp-style GGUF LoRA for the forecast rows: the forecast LoRA,
    concatenated with the task adapter when there is one (so a forecast row
    needs one adapter slot). Every pair gets the same rank (zero-padded) and
    alpha = rank, so scale = 1 and the scales live in B."""
    import numpy as np
    import gguf_io
    pairs = {}
    keys = set(flora.A) | set(task_pairs)
    for key in keys:
        parts_a, parts_b = [], []
        if key in task_pairs:
            a, b, s = task_pairs[key]
            parts_a.append(np.asarray(a, np.float32))
            parts_b.append(np.asarray(b, np.float32) * np.float32(s))
        if key in flora.A:
            parts_a.append(flora.A[key].detach().numpy())
            parts_b.append(flora.B[key].detach().numpy())
        pairs[key] = (np.concatenate(parts_a, 0), np.concatenate(parts_b, 1))
    rank = max(a.shape[0] for a, _ in pairs.values())
    w = gguf_io.GGUFWriter()
    w.add_string("general.architecture", "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_string("general.name", os.path.splitext(os.path.basename(path))[0])
    w.add_f32("adapter.lora.alpha", float(rank))
    w.add_string("chorus.forecast.role", "forecast rows only")
    for (l, stem) in sorted(pairs):
        a, b = pairs[(l, stem)]
        if a.shape[0] < rank:
            a = np.concatenate([a, np.zeros((rank - a.shape[0], a.shape[1]), np.float32)], 0)
            b = np.concatenate([b, np.zeros((b.shape[0], rank - b.shape[1]), np.float32)], 1)
        t = gguf_io.GGML_F16 if f16 else gguf_io.GGML_F32
        w.add_tensor("blk.%d.%s.weight.lora_a" % (l, stem), a, t)  # GGUF dims [in, r]
        w.add_tensor("blk.%d.%s.weight.lora_b" % (l, stem), b, t)  # GGUF dims [r, out]
    w.write(path)
    return rank


# ---------------------------------------------------------------------------
# Acceptance statistics.

TREE_SHAPES = [(1,), (2,), (3,), (2, 2, 1), (3, 2, 1), (3, 2, 2, 1), (4, 2, 1), (3, 3, 2, 1)]


def acceptance(model, e, teacher, idx, starts, deltas=None, chunk=48):
    """For every sequence in idx and every p in [start, T-1-m]: the rank of
    the model's greedy token at p+k+1 among forecast row k's logits.
    Returns a (n_positions, m) long tensor of ranks (0 = top-1)."""
    import torch
    m = e.shape[0]
    T = teacher.tokens.shape[1]
    ranks = []
    with torch.no_grad():
        for j, s in enumerate(idx.tolist()):
            start = max(0, int(starts[j]))
            last = T - 1 - m
            if start > last:
                continue
            ks, vs = teacher.subset(torch.tensor([s]))
            for a in range(start, last + 1, chunk):
                ps = torch.arange(a, min(a + chunk, last + 1)).unsqueeze(0)
                logits = model.forecast_forward(e, ks, vs, ps, deltas)[0]  # (P, m, V)
                tgt = teacher.greedy[s][ps[0].unsqueeze(1) + torch.arange(1, m + 1)]  # (P, m)
                tl = logits.gather(-1, tgt.unsqueeze(-1))
                ranks.append((logits > tl).sum(-1))
    if not ranks:
        return torch.zeros(0, m, dtype=torch.long)
    return torch.cat(ranks)


def summarize(ranks):
    """Per depth: top-1/2/3 rates and chained top-1; expected tau of a chain
    (1 + sum of chained top-1) and of the tree shapes in TREE_SHAPES (width
    per depth, the last width repeating; the tree holds every combination of
    the per-depth candidates)."""
    import torch
    m = ranks.shape[1]
    n = max(1, ranks.shape[0])
    top = {w: (ranks < w).float() for w in (1, 2, 3)}
    chained = torch.cumprod(top[1], dim=1)
    res = {
        "n": ranks.shape[0],
        "top1": (top[1].sum(0) / n).tolist(),
        "top2": (top[2].sum(0) / n).tolist(),
        "top3": (top[3].sum(0) / n).tolist(),
        "chain": (chained.sum(0) / n).tolist(),
    }
    res["tau"] = 1.0 + sum(res["chain"])
    trees = []
    for shape in TREE_SHAPES:
        widths = [shape[min(k, len(shape) - 1)] for k in range(m)]
        hit = torch.cumprod(torch.stack([(ranks[:, k] < widths[k]).float() for k in range(m)], 1), 1)
        nodes, prod = 0, 1
        for w in widths:
            prod *= w
            nodes += prod
        trees.append(("x".join(str(w) for w in widths), nodes, 1.0 + float(hit.sum() / n)))
    res["trees"] = trees
    return res


def print_table(name, res):
    m = len(res["top1"])
    print("%s (%d positions)" % (name, res["n"]))
    print("  depth  top-1   top-2   top-3   chained top-1")
    for k in range(m):
        print("  %5d  %5.3f   %5.3f   %5.3f   %5.3f" % (k + 1, res["top1"][k], res["top2"][k],
                                                        res["top3"][k], res["chain"][k]))
    print("  expected tau, chain of %d: %.3f" % (m, res["tau"]))
    print("  trees (widths per depth: nodes, expected tau): " +
          "; ".join("%s: %d, %.2f" % t for t in res["trees"][1:]))


# ---------------------------------------------------------------------------

def main(argv):
    args = parse_args(argv)
    try:
        import numpy as np
        import torch
    except ImportError as e:
        die("needs PyTorch and numpy for /usr/bin/python3 (apt-get install python3-torch "
            "python3-numpy): %s" % e)
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gguf_io
    import llama_torch as lt

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    t_start = time.time()

    if not os.path.isfile(args.model):
        die("%s: no such model file" % args.model)
    try:
        model = lt.Llama(args.model, adapter=args.adapter or None, adapter_scale=args.adapter_scale)
    except (lt.ModelError, gguf_io.GGUFError) as e:
        die(str(e))
    except (ValueError, KeyError, IndexError, OSError) as e:
        die("%s: cannot read the model or adapter: %s" % (args.model, e))
    c = model.cfg
    m, T = args.count, args.seq_len
    if T > c.context_length:
        die("--seq-len %d exceeds the model's context length %d" % (T, c.context_length), 2)
    tok = None
    if args.prompts or args.eval_prompts:
        try:
            tok = lt.Tokenizer(model.reader)
        except lt.ModelError as e:
            die(str(e))
    file_prompts = read_prompts(args.prompts, tok, T // 2) if args.prompts else []
    log(args, "model %s: dim %d, %d layers, %d/%d heads, vocab %d%s; m = %d forecast rows%s"
        % (args.model, c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.n_vocab,
           ", adapter " + args.adapter if args.adapter else "", m,
           ", forecast LoRA rank %d" % args.lora_rank if args.lora_rank else ""))

    # Text: training sequences, then held-out greedy and sampled sets.
    train_plan = make_plan(args.train_seqs, rng, args.greedy_fraction, T, file_prompts, c.bos,
                           perturb=args.perturb)
    eval_greedy_plan = make_plan(args.eval_seqs, rng, 1.0, T, [], c.bos, prefix=(8, 48))
    eval_sampled_plan = [(p, [1.0 if t < s else 0.8 for t in range(T)], T)
                         for p, _, s in make_plan(args.eval_seqs, rng, 1.0, T, [], c.bos)]
    sets = [("held-out greedy continuations", eval_greedy_plan),
            ("held-out text sampled at temperature 0.8", eval_sampled_plan)]
    if args.eval_prompts:
        ep = read_prompts(args.eval_prompts, tok, T // 2)
        sets.append(("greedy continuations of %s" % os.path.basename(args.eval_prompts),
                     [(p, [0.0] * T, len(p) - 1) for p in ep]))
    all_plan = train_plan + [x for _, plan in sets for x in plan]
    t0 = time.time()
    tokens = generate(model, all_plan, T, gen)
    teacher = Teacher(model, tokens, args.target_temp)
    n_train = len(train_plan)
    log(args, "generated %d sequences of %d tokens (%d for training) and their teacher "
        "distributions in %.1f s" % (tokens.shape[0], T, n_train, time.time() - t0))
    eval_sets = []
    off = n_train
    for name, plan in sets:
        idx = torch.arange(off, off + len(plan))
        starts = [s if s < T else 0 for _, _, s in plan]  # sampled text: every position
        eval_sets.append((name, idx, starts))
        off += len(plan)

    # Forecast vectors: start from the mean token embedding (a neutral input
    # of the right scale) plus a little noise so rows can differ.
    emb = model.tok_embd
    init = emb.mean(0, keepdim=True).expand(m, c.dim).clone()
    init += 0.1 * emb.std() * torch.randn(m, c.dim, generator=gen)
    e = torch.nn.Parameter(init)
    groups = [{"params": [e], "lr": args.lr}]
    flora = None
    if args.lora_rank:
        flora = ForecastLora(model, args.lora_rank, args.lora_stems, gen)
        groups.append({"params": flora.parameters(), "lr": args.lora_lr})
    opt = torch.optim.Adam(groups)
    warm = 20
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) *
        (0.1 + 0.45 * (1 + np.cos(np.pi * min(s, args.steps) / max(1, args.steps)))))

    def deltas():
        return flora.deltas() if flora else None

    quick_name, quick_idx, quick_starts = eval_sets[0]
    quick_idx = quick_idx[: min(8, len(quick_idx))]

    def quick_eval():
        with torch.no_grad():
            r = summarize(acceptance(model, e.detach(), teacher, quick_idx, quick_starts, deltas()))
        return "top-1 " + " ".join("%.2f" % x for x in r["top1"]) + "  tau %.2f" % r["tau"]

    log(args, "step %5d  %s" % (0, quick_eval()))
    pmax = T - 1 - m  # last p whose m targets exist
    depth = torch.arange(1, m + 1)
    t0 = time.time()
    running = None
    for step in range(1, args.steps + 1):
        seqs = torch.randint(0, n_train, (args.batch,), generator=gen)
        ps = torch.randint(0, pmax + 1, (args.batch, args.positions), generator=gen)
        ks, vs = teacher.subset(seqs)
        logits = model.forecast_forward(e, ks, vs, ps, deltas())  # (B, P, m, V)
        tgt = teacher.logp[seqs.view(-1, 1, 1), ps.unsqueeze(-1) + depth]  # (B, P, m, V)
        # KL(teacher || forecast), summed over the vocabulary, mean over rows.
        loss = (tgt.exp() * (tgt - logits.log_softmax(-1))).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step % args.eval_every == 0 or step == args.steps:
            log(args, "step %5d  loss %.4f  %s  (%.1f s)" % (step, running, quick_eval(), time.time() - t0))
    train_time = time.time() - t0

    print("final acceptance (rank of the model's own greedy token at p+k+1 among forecast row k's logits):")
    results = []
    with torch.no_grad():
        d = deltas()
        for name, idx, starts in eval_sets:
            res = summarize(acceptance(model, e.detach(), teacher, idx, starts, d))
            results.append(res)
            print_table(name, res)

    fp = gguf_io.fingerprint(model.output_norm_np)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        lora_rank = 0
        if flora:
            lora_rank = write_lora(args.lora_output, model, flora, model.adapter_pairs, c.n_layers,
                                   args.lora_type == "f16")
        w = gguf_io.GGUFWriter()
        w.add_string("general.architecture", "chorus-forecast")
        w.add_string("general.type", "forecast")
        w.add_u32("chorus.forecast.count", m)
        w.add_u32("chorus.forecast.dim", c.dim)
        w.add_u32("chorus.forecast.base.n_layers", c.n_layers)
        w.add_u32("chorus.forecast.base.n_vocab", c.n_vocab)
        w.add_string("chorus.forecast.base.fingerprint", fp)
        w.add_string("chorus.forecast.adapter", adapter_name(args))
        w.add_string("chorus.forecast.method", "trained-lora" if flora else "trained")
        if flora:
            # The companion adapter the forecast rows must use (path relative
            # to this file); the embeddings are meaningless without it.
            w.add_string("chorus.forecast.lora", os.path.relpath(
                os.path.abspath(args.lora_output), os.path.dirname(os.path.abspath(args.output))))
            w.add_u32("chorus.forecast.lora.rank", lora_rank)
        # Training record (informational).
        w.add_u32("chorus.forecast.train.steps", args.steps)
        w.add_u32("chorus.forecast.train.seed", args.seed)
        w.add_f32("chorus.forecast.train.tau", results[0]["tau"])
        w.add_string("chorus.forecast.train.top1", " ".join("%.4f" % x for x in results[0]["top1"]))
        w.add_tensor("forecast.embd", e.detach().numpy().astype(np.float32))  # GGUF dims [dim, m]
        w.write(args.output)
    except OSError as ex:
        die("%s: cannot write: %s" % (ex.filename or args.output, ex.strerror or ex))
    print("wrote %s (m = %d, dim = %d, base fingerprint %s)%s; training %.1f s, total %.1f s"
          % (args.output, m, c.dim, fp,
             " and %s (forecast LoRA, rank %d)" % (args.lora_output, lora_rank) if flora else "",
             train_time, time.time() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
