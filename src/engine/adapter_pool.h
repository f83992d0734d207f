// The engine's LoRA adapter slots: a fixed number of them, each able to hold
// an adapter of rank up to a fixed maximum on every projection, allocated
// once with the engine (the "fixed input shape" of the frozen graph).
//
// Loading copies an adapter into a free slot (in f16, A as [rank x in] and B
// transposed to [rank x out], so a rank-r adapter writes, and makes
// resident, only the first r rows of each slot matrix); binding it to a row
// is just the slot index in Row::adapter. Base weights are never touched.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "model/lora.h"
#include "util/aligned_buffer.h"

namespace chorus {

class AdapterPool {
 public:
  // One projection of one layer in a slot.
  struct Pair {
    int rank = 0;            // 0: the slot's adapter leaves this projection alone
    float scale = 0.0f;      // user scale x alpha / r (or / sqrt(r))
    const uint16_t* a = nullptr;   // f16 [rank x in]
    const uint16_t* bt = nullptr;  // f16 [rank x out]
  };

  AdapterPool(const ModelConfig& config, int slots, int max_rank);

  // Copies `adapter` into a free slot under `name` and returns the slot.
  // Throws Error (and changes nothing) when the name is taken, the pool is
  // full, a rank exceeds max_rank, or a shape does not fit the model.
  int load(std::string name, const LoraAdapter& adapter, float user_scale = 1.0f);
  void unload(int slot);
  // Rescales a loaded adapter (user scale x alpha / r): O(pairs), no copy.
  void set_scale(int slot, float user_scale);
  float user_scale(int slot) const { return slots_[slot].user_scale; }

  int find(std::string_view name) const;       // -1 when no slot has it
  int slot_of(std::string_view name) const;    // throws Error naming the loaded ones
  bool loaded(int slot) const;
  std::string_view name(int slot) const;
  int rank(int slot) const;                    // the adapter's largest rank
  size_t adapter_bytes(int slot) const;        // f16 bytes its pairs occupy

  int slots() const { return static_cast<int>(slots_.size()); }
  int max_rank() const { return max_rank_; }
  size_t bytes_reserved() const;

  // The pair of `slot` for one projection (rank 0 when absent).
  const Pair& pair(int slot, int layer, LoraTarget t) const {
    return slots_[slot].pairs[static_cast<size_t>(layer) * kLoraTargets + static_cast<int>(t)];
  }

 private:
  struct Slot {
    std::string name;  // empty: free
    float user_scale = 1.0f;
    float alpha = 0.0f;
    bool use_rslora = false;
    int rank = 0;
    size_t bytes = 0;
    AlignedBuffer<uint16_t> storage;  // every pair's a then bt, at max rank
    std::vector<Pair> pairs;          // [layer][target]
  };

  void rescale(Slot& s);

  ModelConfig config_;
  int max_rank_;
  std::vector<Slot> slots_;
  std::vector<size_t> offsets_;  // [layer][target] offset of a within a slot's storage
};

}  // namespace chorus
