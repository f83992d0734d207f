// Training-free forecast embeddings for DS2D, derived from the frozen model
// alone (the floor under trained ones; `chorus forecast derive`).
//
// Forecast k stands in for tokens the step does not know yet, so each
// method looks for one fixed input vector that makes the model's logits at
// that slot predict the token k + 1 ahead well:
//   mean           the mean of all token embeddings;
//   weighted-mean  the mean weighted by how often the model itself emits
//                  each token (the expected embedding of an unknown token);
//   token          the best of the weighted mean (scaled x1, x3, x10) and
//                  the embeddings of the 128 most frequent tokens, scored
//                  on a sample of positions;
//   search         token, then a zeroth-order search (antithetic evolution
//                  strategies, Adam steps) on the probability of the true
//                  future tokens: the prefix-tuning objective without
//                  gradients.
// All score on text the model generated itself (no data needed). Forecasts
// are found one after another, k = 1 first, each with the earlier ones
// fixed; a stage is kept only when it beats the previous one on all
// positions (top-4 hits + top-1 hits + 0.1 x mean probability).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "model/forecast.h"
#include "model/model.h"

namespace chorus {

struct ForecastDeriveOptions {
  int count = 4;                  // m
  std::string method = "search";  // mean, weighted-mean, token, search
  // Self-generated text: `sequences` samples from BOS of `length` tokens
  // (temperature sampling, seeds from `seed`).
  int sequences = 8;
  int length = 128;
  uint64_t seed = 1;
  // search: iterations per forecast, antithetic pairs per iteration,
  // positions per iteration (a random batch of all positions).
  int iterations = 40;
  int pairs = 8;
  int batch = 96;
  // token, search: positions the start candidates are scored on.
  int pool_positions = 256;
  int threads = 2;
};

struct ForecastDeriveReport {
  // [k - 1]: top-1 accuracy and mean log-likelihood of the true token k + 1
  // ahead over all positions of the self-generated text, before the search
  // (weighted mean) and for the result.
  std::vector<double> start_accuracy, accuracy;
  std::vector<double> start_log_likelihood, log_likelihood;
  std::vector<double> start_top4, top4;  // the true token among the first four
  // What a stage is kept on: top-4 hits + top-1 hits + 0.1 x mean
  // probability of the true token (the result's is never below the start's).
  std::vector<double> start_score, score;
  int positions = 0;  // evaluated per forecast
  double seconds = 0;
};

using DeriveProgress = std::function<void(const std::string& message)>;

// Throws Error for bad options (naming the option) or a model without
// weights it can run.
ForecastEmbeddings derive_forecast(const Model& model, const ForecastDeriveOptions& options,
                                   ForecastDeriveReport* report = nullptr,
                                   const DeriveProgress& progress = nullptr);

}  // namespace chorus
