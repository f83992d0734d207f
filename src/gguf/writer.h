// GGUF v3 writer: metadata plus tensors, streamed to disk one tensor at a time
// so multi-gigabyte synthetic models never sit in memory whole.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/types.h"

namespace chorus::gguf {

class Writer {
 public:
  void set(std::string key, Value value);  // replaces an existing key
  void set_string(std::string key, std::string v);
  void set_uint32(std::string key, uint32_t v);
  void set_int32(std::string key, int32_t v);
  void set_uint64(std::string key, uint64_t v);
  void set_float32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string_array(std::string key, std::vector<std::string> v);
  void set_float32_array(std::string key, std::vector<float> v);
  void set_int32_array(std::string key, std::vector<int32_t> v);

  // `fill` writes exactly row_bytes(type, dims[0]) * rows bytes into `dst`
  // when the tensor is written. dims in GGUF order (dims[0] = row length).
  using Fill = std::function<void(std::span<uint8_t> dst)>;
  void add_tensor(std::string name, TensorType type, std::vector<int64_t> dims, Fill fill);
  void add_tensor(std::string name, TensorType type, std::vector<int64_t> dims,
                  std::span<const uint8_t> data);  // data copied now

  // Writes the file (alignment 32, or general.alignment when set as a uint32).
  // `progress(done, total)` is called after each tensor with tensor counts.
  // Throws Error when the path cannot be written; a partial file is removed.
  void write(const std::string& path,
             const std::function<void(size_t, size_t)>& progress = nullptr) const;

 private:
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> dims;
    Fill fill;
  };
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
  std::set<std::string, std::less<>> tensor_names_;  // to reject duplicates
};

}  // namespace chorus::gguf
