// Adapter slots; see adapter_pool.h.
#include "engine/adapter_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "util/half.h"

namespace chorus {
namespace {

constexpr const char* kWhere = "adapters";
constexpr int kMaxRank = 4096;

// Hands the pages of [p, p + bytes) that lie wholly inside the range back to
// the kernel: an unloaded slot stops costing memory, and reads as zeros.
void release_pages(void* p, size_t bytes) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace

AdapterPool::AdapterPool(const ModelConfig& config, int slots, int max_rank)
    : config_(config), max_rank_(max_rank) {
  check(slots >= 0 && slots <= 256, kWhere, "adapter slots must be 0..256, got {}", slots);
  check(slots == 0 || (max_rank >= 1 && max_rank <= kMaxRank), kWhere,
        "adapter max rank must be 1..{} when there are slots, got {}", kMaxRank, max_rank);
  size_t total = 0;
  offsets_.resize(static_cast<size_t>(config.n_layers) * kLoraTargets);
  for (int l = 0; l < config.n_layers; ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto target = static_cast<LoraTarget>(t);
      offsets_[static_cast<size_t>(l) * kLoraTargets + t] = total;
      total += static_cast<size_t>(max_rank) *
               (lora_target_in(config, target) + lora_target_out(config, target));
    }
  }
  slots_.resize(static_cast<size_t>(slots));
  for (Slot& s : slots_) {
    // Uninitialised: a slot's pages become resident only as an adapter is
    // copied in, so reserved capacity costs address space, not memory.
    s.storage = AlignedBuffer<uint16_t>::uninitialized(total);
    s.pairs.resize(offsets_.size());
  }
}

int AdapterPool::load(std::string name, const LoraAdapter& adapter, float user_scale) {
  const std::string where = adapter.path.empty() ? std::string(kWhere) : adapter.path;
  check(!name.empty(), kWhere, "an adapter needs a name");
  check(find(name) < 0, kWhere, "an adapter named '{}' is already loaded", name);
  check(static_cast<int>(adapter.layers.size()) == config_.n_layers, where,
        "adapter has {} layers, the model {}", adapter.layers.size(), config_.n_layers);
  for (int l = 0; l < config_.n_layers; ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto& p = adapter.layers[l][t];
      if (!p) continue;
      const auto target = static_cast<LoraTarget>(t);
      const std::string tensor = fmt::format("layer {} {}", l, lora_target_name(target));
      check(p->rank >= 1 && p->rank <= max_rank_, where,
            "{}: rank {} exceeds the adapter pool's max rank {}", tensor, p->rank, max_rank_);
      check(p->in == lora_target_in(config_, target) && p->out == lora_target_out(config_, target),
            where, "{}: shape [{} x {}] does not fit the model's [{} x {}]", tensor, p->out, p->in,
            lora_target_out(config_, target), lora_target_in(config_, target));
      check(p->a.size() == static_cast<size_t>(p->rank) * p->in &&
                p->b.size() == static_cast<size_t>(p->out) * p->rank,
            where, "{}: matrix sizes do not match rank {}", tensor, p->rank);
    }
  }
  const auto free_slot =
      std::find_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.name.empty(); });
  check(free_slot != slots_.end(), kWhere,
        "cannot load '{}': all {} adapter slots are in use (unload one first)", name,
        slots_.size());

  Slot& s = *free_slot;
  s.alpha = adapter.alpha;
  s.use_rslora = adapter.use_rslora;
  s.user_scale = user_scale;
  s.rank = 0;
  s.bytes = 0;
  for (int l = 0; l < config_.n_layers; ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const size_t index = static_cast<size_t>(l) * kLoraTargets + t;
      Pair& dst = s.pairs[index];
      dst = Pair{};
      const auto& p = adapter.layers[l][t];
      if (!p) continue;
      uint16_t* a = s.storage.data() + offsets_[index];
      uint16_t* bt = a + static_cast<size_t>(max_rank_) * p->in;
      for (size_t i = 0; i < p->a.size(); ++i) a[i] = f32_to_f16(p->a[i]);
      for (int o = 0; o < p->out; ++o) {
        for (int j = 0; j < p->rank; ++j) bt[j * p->out + o] = f32_to_f16(p->b[o * p->rank + j]);
      }
      dst.rank = p->rank;
      dst.a = a;
      dst.bt = bt;
      s.rank = std::max(s.rank, p->rank);
      s.bytes += static_cast<size_t>(p->rank) * (p->in + p->out) * sizeof(uint16_t);
    }
  }
  s.name = std::move(name);
  rescale(s);
  return static_cast<int>(free_slot - slots_.begin());
}

void AdapterPool::unload(int slot) {
  check(loaded(slot), kWhere, "slot {} holds no adapter", slot);
  Slot& s = slots_[slot];
  s.name.clear();
  for (Pair& p : s.pairs) p = Pair{};
  release_pages(s.storage.data(), s.storage.bytes());
}

void AdapterPool::set_scale(int slot, float user_scale) {
  check(loaded(slot), kWhere, "slot {} holds no adapter", slot);
  slots_[slot].user_scale = user_scale;
  rescale(slots_[slot]);
}

void AdapterPool::rescale(Slot& s) {
  LoraAdapter rule;  // pair_scale only reads alpha and use_rslora
  rule.alpha = s.alpha;
  rule.use_rslora = s.use_rslora;
  for (Pair& p : s.pairs) {
    if (p.rank == 0) continue;
    LoraPair shape;
    shape.rank = p.rank;
    p.scale = rule.pair_scale(shape, s.user_scale);
  }
}

int AdapterPool::find(std::string_view name) const {
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].name.empty() && slots_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int AdapterPool::slot_of(std::string_view name) const {
  const int slot = find(name);
  if (slot >= 0) return slot;
  std::string names;
  for (const Slot& s : slots_) {
    if (s.name.empty()) continue;
    names += names.empty() ? "" : ", ";
    names += s.name;
  }
  throw Error(kWhere, fmt::format("no adapter named '{}' is loaded ({})", name,
                                  names.empty() ? "none are" : "loaded: " + names));
}

bool AdapterPool::loaded(int slot) const {
  return slot >= 0 && slot < slots() && !slots_[slot].name.empty();
}

std::string_view AdapterPool::name(int slot) const {
  return loaded(slot) ? std::string_view(slots_[slot].name) : std::string_view();
}

int AdapterPool::rank(int slot) const { return loaded(slot) ? slots_[slot].rank : 0; }

size_t AdapterPool::adapter_bytes(int slot) const { return loaded(slot) ? slots_[slot].bytes : 0; }

size_t AdapterPool::bytes_reserved() const {
  size_t total = 0;
  for (const Slot& s : slots_) total += s.storage.bytes();
  return total;
}

}  // namespace chorus
