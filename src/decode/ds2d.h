// DS2D: dynamic self-speculative tree decoding with forecast embeddings.
//
// A drop-in for decode_plain (same StreamState contract, same stopping
// rules, same greedy output): every step, each live stream contributes a
// token tree to the SAME engine step. The tree's root is the stream's next
// token; its other nodes are guesses for the following positions taken from
// the forecast logits of the previous step (and optionally from n-gram
// matches in the text). The nodes where the walk most likely ends are
// followed by their own chain of forecast rows (ForecastEmbeddings), so one
// pass both verifies this tree and drafts the next one. The walk down the
// tree (ds2d_verify.h) samples the model's own token at each node and keeps
// the matching child, so the output is exactly what plain decoding gives;
// accepted nodes are committed into the stream's KV cache, everything else
// is dropped by the next step.
//
// Files: ds2d_tree (candidates -> tree), ds2d_shape (forecast rows and
// nodes per step, from ds2d_stats' running acceptance), ds2d_verify (the
// walk), ds2d_ngram (n-gram branches), ds2d_trace (acceptance traces
// recorded and replayed by the benchmark), this loop.
#pragma once

#include <span>
#include <vector>

#include "decode/ds2d_stats.h"
#include "decode/ds2d_trace.h"
#include "decode/multi_stream.h"
#include "decode/stream_state.h"
#include "engine/engine.h"
#include "model/forecast.h"

namespace chorus {

struct Ds2dOptions {
  // Rows per stream and step: the tree's nodes plus their forecast rows.
  // Must fit the engine's max_rows; shared among live streams (and free KV
  // cells) when they would not all fit.
  int budget = 32;
  // Forecast candidates per depth (top-k), 1..8; the tree keeps the likely ones.
  int max_width = 8;
  int max_depth = 8;  // tree depth below the root, 1..16
  // Training-free branches: continuations of the longest repeated suffix of
  // min..max tokens in the prompt and text so far.
  bool ngram = true;
  int ngram_min = 1;
  int ngram_max = 3;
  // Choose forecast rows per node (and so depth and width) every step from
  // running acceptance statistics; false: always `forecast_rows`.
  bool dynamic = true;
  int forecast_rows = -1;  // fixed forecast rows per chain when !dynamic; -1: all m
  // Nodes that get a forecast chain: the likeliest ends of the walk (see
  // ds2d_shape.h). -1: chosen with the rest of the shape (when dynamic;
  // a chain after every node otherwise); 0: every node; >= 1: that many.
  int forecast_chains = -1;
  // Cost of one more row relative to a 1-row step (see TreeLimits): nodes
  // are added while they raise expected tokens per unit of step cost. 0
  // spends the budget whenever a node has any chance; -1 measures it on the
  // engine when decoding starts (ds2d_cost.h; kept in the tuner).
  float row_cost = -1.0f;
  // Benchmark hooks (ds2d_trace.h), null when decoding: `record` gets the
  // accepted length of every tree verified; with `replay` the walk accepts
  // as many nodes as the trace's next length says instead of following the
  // model (the output is then NOT the model's).
  AcceptanceTrace* record = nullptr;
  AcceptanceTrace* replay = nullptr;
};

// Throws Error (naming the option or file) unless the options and forecasts
// can run on `engine` with `n_streams` streams: budget in 1..max_rows, a
// forecast set per stream (forecasts.size() is 0 for none, 1 for all
// streams, or n_streams; entries may be null), each fitting the engine's
// model. m may exceed the budget: chains then use the first budget - 1.
void validate_ds2d(const Engine& engine, const Ds2dOptions& options,
                   std::span<const ForecastEmbeddings* const> forecasts, size_t n_streams);

// Decodes until every stream is done, like decode_plain. Each stream's rows
// carry its adapter slot; its forecasts are forecasts[i] (or forecasts[0]),
// and forecasts naming an adapter must go to streams bound to an adapter
// of that name (Error otherwise).
// tuner (optional) keeps acceptance estimates per adapter across calls.
// Throws Error from validate_ds2d before any step, and what Engine::step
// throws.
Ds2dStats decode_ds2d(Engine& engine, std::span<StreamState> streams, const DecodeLimits& limits,
                      const OnStreamToken& on_token, const Ds2dOptions& options,
                      std::span<const ForecastEmbeddings* const> forecasts,
                      Ds2dTuner* tuner = nullptr);

// Loads the companion LoRA of `f` (if it names one) into a free adapter slot
// of `engine` and records the slot in f.lora_slot, so forecast rows bind it.
// Throws Error when the file does not fit or no slot is free. No-op for
// forecasts without a LoRA.
void load_forecast_lora(Engine& engine, ForecastEmbeddings& f);

// decode_ds2d as a DecodeLoop for run_streams (multi_stream.h). The
// forecasts (and tuner) must outlive the loop; each call's statistics are
// added to *stats when given.
DecodeLoop ds2d_decode_loop(const Ds2dOptions& options,
                            std::vector<const ForecastEmbeddings*> forecasts,
                            Ds2dStats* stats = nullptr, Ds2dTuner* tuner = nullptr);

}  // namespace chorus
