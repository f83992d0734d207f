#!/usr/bin/python3
"""Trains small style LoRA adapters for a frozen LLaMA GGUF model.

Filtered self-distillation, no external data (train/README.md, "Style
adapters", has the reasoning and the measurements):
  1. the frozen base model writes a pool of stories (temperature 1, from BOS
     and from short neutral prompts);
  2. a style is a keyword filter (train/lora_style.py STYLES): "dog" keeps
     the stories that name a dog or puppy within their first --max-first
     tokens, "sad" the ones where someone is sad, upset or crying, ...;
  3. a LoRA (base frozen) is trained on those stories with the next-token
     loss up to the first keyword, and a KL-to-the-base-model loss after it
     (once the keyword is there, the style-conditioned model and the base
     model agree; the soft target keeps the adapter fluent at no variance);
  4. more rounds (--rounds): the adapted model writes new stories, the same
     filter keeps the ones in style, and training continues on the union
     (rejection-sampling fine-tuning; each round sharpens the style).
The result is a llama.cpp GGUF LoRA that chorus loads with --lora.

Then it measures, with and without the adapter: the share of sampled stories
that match the style, greedy continuations of a few prompts, the per-token
loss on held-out base-model text (fluency), and how likely the base model
finds the adapter's own stories.

Usage:
  /usr/bin/python3 train/lora_train.py -m models/stories260K.gguf \\
      --styles dog,sad,bird --out-dir models/adapters --seed 1
  /usr/bin/python3 train/lora_train.py --survey -m models/stories260K.gguf
  /usr/bin/python3 train/lora_train.py --eval-only -m models/stories260K.gguf \\
      --styles dog --out-dir models/adapters
  /usr/bin/python3 train/lora_train.py --greedy "Once upon a time" -n 40 \\
      -m models/stories260K.gguf --styles dog,sad,bird --out-dir models/adapters
"""

import argparse
import ctypes
import json
import math
import os
import sys
import time
import zlib

PROG = "lora_train"


def die(msg, code=1):
    print("%s: error: %s" % (PROG, msg), file=sys.stderr)
    sys.exit(code)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        die(message + " (see --help)", 2)


def parse_args(argv):
    p = _Parser(prog=PROG, description="Train style LoRA adapters for a frozen GGUF llama model by "
                "filtered self-distillation and write llama.cpp GGUF LoRA files.")
    p.add_argument("-m", "--model", required=True, help="base model (GGUF, llama)")
    p.add_argument("--styles", default="dog,sad,bird",
                   help="comma-separated built-in styles (see --list-styles; default dog,sad,bird)")
    p.add_argument("--out-dir", default="models/adapters", help="where STYLE.gguf goes (default models/adapters)")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--alpha", type=float, default=0.0, help="LoRA alpha (default 2 x rank)")
    p.add_argument("--targets", default="q,k,v,o,gate,up,down",
                   help="adapted projections (default q,k,v,o,gate,up,down)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--type", default="f16", choices=("f16", "f32"),
                   help="tensor type of the written adapter (default f16; the evaluation uses the "
                   "written, rounded weights)")
    p.add_argument("--pool", type=int, default=8192, help="base-model stories in the pool (default 8192)")
    p.add_argument("--pool-len", type=int, default=128, help="tokens per pool story (default 128)")
    p.add_argument("--pool-cache", default="", help="optional .npz cache of the pool (reused when its "
                   "model, size, length and seed match)")
    p.add_argument("--heldout", type=int, default=256,
                   help="pool stories kept out of training for the fluency loss (default 256)")
    p.add_argument("--max-first", type=int, default=48,
                   help="keep stories whose first keyword ends within this many tokens (default 48)")
    p.add_argument("--rounds", type=int, default=3, help="filter-and-train rounds (default 3)")
    p.add_argument("--round-stories", type=int, default=1024,
                   help="stories the adapted model writes per extra round (default 1024)")
    p.add_argument("--steps", type=int, default=200, help="max optimizer steps per round (default 200)")
    p.add_argument("--epochs", type=float, default=6.0,
                   help="at most this many passes over a round's stories (default 6)")
    p.add_argument("--batch", type=int, default=16, help="stories per step (default 16)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--kl-weight", type=float, default=1.0,
                   help="weight of the KL-to-base term after the keyword (default 1)")
    p.add_argument("--log-every", type=int, default=50, help="steps between progress lines (default 50)")
    p.add_argument("--eval-stories", type=int, default=256,
                   help="stories sampled with and without the adapter for the keyword rate (default 256)")
    p.add_argument("--eval-len", type=int, default=160, help="tokens per evaluation story (default 160)")
    p.add_argument("--report", default="", help="also write the measurements as JSON here")
    p.add_argument("--eval-only", action="store_true", help="evaluate existing OUT_DIR/STYLE.gguf files")
    p.add_argument("--survey", action="store_true", help="only print how often the pool matches each style")
    p.add_argument("--list-styles", action="store_true", help="print the built-in styles and exit")
    p.add_argument("--greedy", metavar="PROMPT", default="",
                   help="only print the greedy continuation of PROMPT by the base model and with each "
                   "OUT_DIR/STYLE.gguf (to compare with chorus run --temp 0)")
    p.add_argument("-n", "--n-predict", type=int, default=40, help="tokens for --greedy (default 40)")
    p.add_argument("--quiet", action="store_true", help="only the final table")
    a = p.parse_args(argv)
    a.alpha = a.alpha or 2.0 * a.rank
    if not 1 <= a.rank <= 64:
        die("--rank must be in 1..64, got %d" % a.rank, 2)
    if not 1 <= a.threads <= 64:
        die("--threads must be in 1..64", 2)
    if a.pool < a.heldout + 64 or a.heldout < 16:
        die("--pool must exceed --heldout + 64 and --heldout must be >= 16", 2)
    if a.rounds < 1 or a.steps < 1 or a.batch < 1 or a.log_every < 1 or a.round_stories < 1:
        die("--rounds, --round-stories, --steps, --batch and --log-every must be >= 1", 2)
    if a.max_first < 1 or a.epochs <= 0 or a.lr <= 0 or a.kl_weight < 0:
        die("--max-first, --epochs and --lr must be > 0, --kl-weight >= 0", 2)
    if not 16 <= a.pool_len <= 512 or not 16 <= a.eval_len <= 512:
        die("--pool-len and --eval-len must be in 16..512", 2)
    return a


def log(args, *msg):
    if not args.quiet:
        print(*msg, flush=True)


def tame_malloc():
    """glibc returns big freed blocks to the kernel at once, so every training
    step page-faults its activations back in (more system than user time).
    Keep freed memory instead; measured 2.5x faster steps."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD
        libc.mallopt(-2, 256 << 20)  # M_TOP_PAD
        libc.mallopt(-3, 32 << 20)   # M_MMAP_THRESHOLD (glibc's maximum)
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------------------

def load_pool(args, model, tok, ls, np, torch):
    """The base model's stories (id lists), generated or read from the cache."""
    key = "%s|%d|%d|%d" % (os.path.basename(args.model), args.pool, args.pool_len, args.seed)
    if args.pool_cache and os.path.isfile(args.pool_cache):
        z = np.load(args.pool_cache, allow_pickle=False)
        if str(z["key"]) == key:
            flat, lens = z["ids"], z["lens"]
            stories = np.split(flat, np.cumsum(lens)[:-1])
            log(args, "pool: %d stories from %s" % (len(stories), args.pool_cache))
            return [s.tolist() for s in stories]
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    prompts = ls.make_prompts(args.pool, rng, tok, model.cfg.bos)
    t0 = time.time()
    stories = ls.generate_stories(model, prompts, args.pool_len, 1.0, gen)
    log(args, "pool: %d base-model stories of up to %d tokens in %.0f s"
        % (len(stories), args.pool_len, time.time() - t0))
    if args.pool_cache:
        np.savez(args.pool_cache, key=key, lens=np.array([len(s) for s in stories]),
                 ids=np.concatenate([np.array(s, np.int32) for s in stories]))
    return stories


def style_seed(seed, style):
    return (seed * 1000003 + zlib.crc32(style.encode())) & 0x7FFFFFFF


def pick(stories, rx, det, max_first):
    """(story, index of the token completing the first keyword) for the
    stories whose first keyword ends within max_first tokens."""
    out = []
    for s in stories:
        f = det.first_match_token(s, rx)
        if f is not None and f <= max_first:
            out.append((s, f))
    return out


def train_style(args, style, model, tok, det, pool, ls, np, torch):
    rx = ls.style_regex(style)
    c = model.cfg
    seed = style_seed(args.seed, style)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    picked = pick(pool, rx, det, args.max_first)
    order = rng.permutation(len(picked))
    picked = [picked[i] for i in order]
    n_val = max(16, len(picked) // 10)
    val, data = picked[:n_val], picked[n_val:]
    log(args, "[%s] round 1: %d of %d pool stories (%.1f%%) name the style within %d tokens: "
        "%d to train, %d held out" % (style, len(picked), len(pool), 100.0 * len(picked) / len(pool),
                                      args.max_first, len(data), len(val)))
    if len(data) < 4 * args.batch:
        die("style %s: only %d pool stories match; use a bigger --pool or --max-first"
            % (style, len(picked)))
    stems = [ls.TARGET_NAMES[t] for t in args.targets.split(",")]
    lora = ls.Lora(model, args.rank, args.alpha, stems, gen)
    opt = torch.optim.Adam(lora.parameters(), lr=args.lr)
    rounds = []
    t0 = time.time()

    def val_loss(layers):
        with torch.no_grad():
            tot, n = ls.nll(model, [s for s, _ in val], layers)
        return tot / n

    base_val = val_loss(None)
    for rnd in range(1, args.rounds + 1):
        info = {"round": rnd}
        if rnd > 1:
            prompts = ls.make_prompts(args.round_stories, rng, tok, c.bos)
            with torch.no_grad():
                new = ls.generate_stories(model, prompts, args.pool_len, 1.0, gen,
                                          layers=lora.layers(model))
            keep = pick(new, rx, det, args.max_first)
            data = data + keep
            info.update({"written": len(new), "matched": len(keep)})
            log(args, "[%s] round %d: the adapted model wrote %d stories, %d (%.1f%%) name the style "
                "within %d tokens; %d to train" % (style, rnd, len(new), len(keep),
                                                   100.0 * len(keep) / len(new), args.max_first, len(data)))
        steps = min(args.steps, int(math.ceil(args.epochs * len(data) / args.batch)))
        ce_sum = kl_sum = 0.0
        for step in range(1, steps + 1):
            idx = rng.choice(len(data), args.batch, replace=False)
            loss, ce, kl = ls.style_batch_loss(model, lora, [data[i][0] for i in idx],
                                               [data[i][1] for i in idx], args.kl_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ce_sum += ce
            kl_sum += kl
            if step % args.log_every == 0 or step == steps:
                log(args, "[%s]   step %d/%d: cross-entropy up to the keyword %.4f, KL to the base "
                    "after it %.4f (%.0f s)" % (style, step, steps, ce_sum / args.log_every,
                                                kl_sum / args.log_every, time.time() - t0))
                ce_sum = kl_sum = 0.0
        v = val_loss(lora.layers(model))
        info.update({"train_stories": len(data), "steps": steps, "val_loss": v})
        rounds.append(info)
        log(args, "[%s]   round %d: loss on %d held-out %s stories %.4f (base model %.4f)"
            % (style, rnd, len(val), style, v, base_val))
    return lora, {"pool_matched": len(picked), "val_stories": len(val), "rounds": rounds,
                  "val_loss_base": base_val, "val_loss_adapter": rounds[-1]["val_loss"],
                  "train_seconds": time.time() - t0}


def evaluate(args, style, model, tok, det, heldout, layers, ls, np, torch):
    """Keyword rates, greedy continuations and fluency, with and without."""
    rx = ls.style_regex(style)
    c = model.cfg
    res = {}
    for label, L in (("base", None), ("adapter", layers)):
        gen = torch.Generator().manual_seed(args.seed + 12345)  # the same draws for both
        st = ls.generate_stories(model, [[c.bos]] * args.eval_stories, args.eval_len, 1.0, gen, layers=L)
        texts = [det(s) for s in st]
        rate = float(np.mean([ls.matches(rx, t) for t in texts]))
        # Fluency of what it writes, as the frozen base model judges it.
        tot, n = ls.nll(model, st)
        greedy = []
        for p in ls.EVAL_PROMPTS:
            g = ls.generate_stories(model, [tok.encode(p)], 64, 0.0, gen, layers=L)[0]
            greedy.append(det(g))
        h_tot, h_n = ls.nll(model, heldout, L)
        res[label] = {"rate": rate, "sample_nll_by_base": tot / n, "heldout_loss": h_tot / h_n,
                      "heldout_ppl": float(np.exp(h_tot / h_n)), "greedy": greedy,
                      "greedy_rate": float(np.mean([ls.matches(rx, g) for g in greedy])),
                      "sample": texts[0]}
    return res


def main(argv):
    args = parse_args(argv)
    try:
        import numpy as np
        import torch
    except ImportError as e:
        die("needs PyTorch and numpy for /usr/bin/python3 (apt-get install python3-torch "
            "python3-numpy): %s" % e)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gguf_io
    import llama_torch as lt
    import lora_style as ls

    if args.list_styles:
        for name, (rx, desc) in sorted(ls.STYLES.items()):
            print("%-6s %s: %s" % (name, desc, rx))
        return 0
    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    bad = [s for s in styles if s not in ls.STYLES]
    if bad or not styles:
        die("--styles: unknown style(s) %s (built in: %s)" % (",".join(bad), ",".join(sorted(ls.STYLES))), 2)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not targets or any(t not in ls.TARGET_NAMES for t in targets):
        die("--targets: use a subset of q,k,v,o,gate,up,down", 2)
    args.targets = ",".join(targets)

    tame_malloc()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t_start = time.time()
    if not os.path.isfile(args.model):
        die("%s: no such model file" % args.model)
    try:
        model = lt.Llama(args.model)
        tok = lt.Tokenizer(model.reader)
    except (lt.ModelError, gguf_io.GGUFError) as e:
        die(str(e))
    det = ls.Detok(model.reader)
    if args.pool_len > model.cfg.context_length or args.eval_len > model.cfg.context_length:
        die("--pool-len / --eval-len exceed the context length %d" % model.cfg.context_length, 2)

    if args.greedy:
        prompt = tok.encode(args.greedy)
        for name in ["base"] + styles:
            layers = None
            if name != "base":
                path = os.path.join(args.out_dir, name + ".gguf")
                try:
                    layers = lt.Llama(args.model, adapter=path).layers
                except (lt.ModelError, gguf_io.GGUFError) as e:
                    die(str(e))
            ids = ls.generate(model, [prompt], len(prompt) + args.n_predict, 0.0, None, layers)[0].tolist()
            print("%s: %s" % (name, det(ids).replace("\n", "\\n")))
            print("  ids: %s" % " ".join(str(i) for i in ids[len(prompt):]))
        return 0

    stories = load_pool(args, model, tok, ls, np, torch)
    heldout, pool = stories[-args.heldout:], stories[:-args.heldout]
    texts = [det(s) for s in pool]
    say = print if args.survey or not args.quiet else (lambda *a: None)
    say("pool: %d stories (+%d held out); share that match each style (anywhere in %d tokens / "
        "within the first %d tokens):" % (len(pool), len(heldout), args.pool_len, args.max_first))
    for name in sorted(ls.STYLES):
        rx = ls.style_regex(name)
        say("  %-6s %5.1f%%  %5.1f%%  %s" % (
            name, 100.0 * np.mean([ls.matches(rx, t) for t in texts]),
            100.0 * len(pick(pool, rx, det, args.max_first)) / len(pool), ls.STYLES[name][1]))
    if args.survey:
        return 0

    report = {"model": args.model, "settings": {k: v for k, v in vars(args).items()}, "styles": {}}
    for style in styles:
        path = os.path.join(args.out_dir, style + ".gguf")
        if args.eval_only:
            try:
                am = lt.Llama(args.model, adapter=path)
            except (lt.ModelError, gguf_io.GGUFError) as e:
                die(str(e))
            layers, info = am.layers, {}
        else:
            lora, info = train_style(args, style, model, tok, det, pool, ls, np, torch)
            desc = "chorus style adapter '%s': %s. Filtered self-distillation of %s (train/lora_train.py, " \
                   "seed %d, rank %d, alpha %g, targets %s)" % (
                       style, ls.STYLES[style][1], os.path.basename(args.model), args.seed,
                       args.rank, args.alpha, args.targets)
            extra = {"chorus.style.keywords": (gguf_io.T_STRING, ls.STYLES[style][0]),
                     "chorus.style.seed": (gguf_io.T_UINT32, args.seed)}
            ggml_type = gguf_io.GGML_F16 if args.type == "f16" else gguf_io.GGML_F32
            ls.write_gguf_lora(path, lora, style, desc, extra, ggml_type)
            layers = [{k: v.detach() for k, v in L.items()} for L in lora.layers(model)]
            # Read the file back the way the other tools do and check it is the same model.
            am = lt.Llama(args.model, adapter=path)
            err = max(float((a[s] - b[s]).abs().max()) for a, b in zip(am.layers, layers) for s in a)
            info["readback_max_abs_diff"] = err
            if err > (2e-3 if args.type == "f16" else 1e-4):
                die("%s: written adapter differs from the trained one (max |diff| %g)" % (path, err))
            layers = am.layers
            log(args, "[%s] wrote %s (%d bytes)" % (style, path, os.path.getsize(path)))
        ev = evaluate(args, style, model, tok, det, heldout, layers, ls, np, torch)
        info.update({"file": path, "bytes": os.path.getsize(path), "eval": ev})
        report["styles"][style] = info

    # Final table.
    print()
    print("style   | keyword rate base -> adapter (%d stories, T=%d) | greedy prompts in style | "
          "held-out base text loss (ppl) base -> adapter | adapter text NLL under base | bytes"
          % (args.eval_stories, args.eval_len))
    for style, info in report["styles"].items():
        b, a = info["eval"]["base"], info["eval"]["adapter"]
        print("%-7s | %5.1f%% -> %5.1f%% | %d/%d -> %d/%d | %.4f (%.2f) -> %.4f (%.2f) | %.4f -> %.4f | %d"
              % (style, 100 * b["rate"], 100 * a["rate"],
                 round(b["greedy_rate"] * len(ls.EVAL_PROMPTS)), len(ls.EVAL_PROMPTS),
                 round(a["greedy_rate"] * len(ls.EVAL_PROMPTS)), len(ls.EVAL_PROMPTS),
                 b["heldout_loss"], b["heldout_ppl"], a["heldout_loss"], a["heldout_ppl"],
                 b["sample_nll_by_base"], a["sample_nll_by_base"], info["bytes"]))
    for style, info in report["styles"].items():
        print("\n[%s] greedy continuations, base | adapter:" % style)
        for gb, ga in zip(info["eval"]["base"]["greedy"], info["eval"]["adapter"]["greedy"]):
            print("  - %s\n  + %s" % (gb.replace("\n", " / "), ga.replace("\n", " / ")))
    report["seconds"] = time.time() - t_start
    print("\ntotal %.0f s" % report["seconds"])
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
