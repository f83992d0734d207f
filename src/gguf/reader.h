// GGUF v3 reader: parses the header, metadata and tensor directory of a
// memory-mapped file and hands out views of tensor data in place.
// Every malformed input (truncation, bad magic, unknown types, offsets out of
// range, absurd counts) becomes an Error naming the file and what is wrong.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gguf/types.h"
#include "util/mapped_file.h"

namespace chorus::gguf {

// One metadata value. Arrays keep their element type; string arrays are
// stored as strings, numeric arrays in the widest matching C++ type.
struct Value {
  ValueType type = ValueType::kUint32;
  ValueType elem_type = ValueType::kUint32;  // arrays only
  std::variant<uint64_t, int64_t, double, bool, std::string,
               std::vector<uint64_t>, std::vector<int64_t>, std::vector<double>,
               std::vector<bool>, std::vector<std::string>>
      data;

  size_t array_size() const;        // 0 for scalars
  std::string to_string(size_t max_items = 8) const;  // for `chorus info`
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::kF32;
  std::vector<int64_t> dims;  // GGUF order: dims[0] is the row length
  uint64_t offset = 0;        // relative to the data section
  int64_t n_elements = 0;
  size_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the map

  int64_t rows() const;  // product of dims[1..]
  int64_t cols() const { return dims.empty() ? 1 : dims[0]; }
};

class Reader {
 public:
  // Opens and validates `path`. Throws Error.
  static Reader open(const std::string& path);
  // Parses an in-memory image (used by the fuzzer and tests); `bytes` must
  // outlive the reader.
  static Reader parse(std::span<const uint8_t> bytes, std::string name = "<memory>");

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t file_size() const { return bytes_.size(); }
  // Where the tensor data section starts (TensorInfo::offset is relative to it).
  size_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters throw Error("path", "key 'k' ...") when missing or of an
  // incompatible type. Integer getters accept any integer type whose value
  // fits; get_float accepts float and integer types.
  std::string get_string(std::string_view key) const;
  uint64_t get_uint(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::vector<std::string>& get_string_array(std::string_view key) const;
  std::vector<double> get_float_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;

  // Optional forms: nullopt when the key is absent (still throw on wrong type).
  std::optional<std::string> find_string(std::string_view key) const;
  std::optional<uint64_t> find_uint(std::string_view key) const;
  std::optional<double> find_float(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws if absent

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;  // null for parse()
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  size_t data_offset_ = 0;

  void parse_image();  // fills everything above from bytes_
};

}  // namespace chorus::gguf
