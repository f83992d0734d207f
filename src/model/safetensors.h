// safetensors files (Hugging Face's tensor container, used by PEFT adapters):
// an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw little-endian data. The reader
// maps the file and validates the whole header against the file size before
// any tensor is touched; the writer produces what the reference library does
// (header padded with spaces to 8 bytes, tensors packed back to back).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/mapped_file.h"

namespace chorus {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;       // as in the header: "F32", "F16", "BF16", "I64", ...
  size_t dtype_bytes = 0;  // bytes per element
  std::vector<int64_t> shape;
  int64_t n_elements = 0;  // product of shape (1 for a scalar)
  size_t offset = 0;       // data_offsets[0], relative to the data section
  size_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the file image; may be unaligned
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws Error naming the path (and tensor).
  static SafetensorsFile open(const std::string& path);
  // Validates an in-memory image (fuzzer, tests); `bytes` must outlive the
  // result. `name` stands for the path in error messages.
  static SafetensorsFile parse(std::span<const uint8_t> bytes, std::string name = "<memory>");

  const std::string& path() const { return path_; }
  size_t file_size() const { return bytes_.size(); }
  size_t data_offset() const { return data_offset_; }  // 8 + header length
  // Tensors in the order of their data in the file.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  // The optional "__metadata__" string map.
  const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }

  // Whether read_f32 can convert this dtype (F32, F16, BF16).
  static bool readable_dtype(std::string_view dtype);
  // The tensor's values as f32; throws Error naming the file and tensor for
  // any other dtype.
  std::vector<float> read_f32(const SafetensorsTensor& t) const;

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;  // null for parse()
  std::span<const uint8_t> bytes_;
  size_t data_offset_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string, std::less<>> metadata_;

  void parse_image();
};

class SafetensorsWriter {
 public:
  void set_metadata(std::string key, std::string value);
  // Adds a tensor; `data` (copied) must hold product(shape) elements of
  // `dtype`. Throws Error for an unknown dtype, a size mismatch or a
  // duplicate name.
  void add(std::string name, std::string dtype, std::vector<int64_t> shape,
           std::span<const uint8_t> data);
  void add_f32(std::string name, std::vector<int64_t> shape, std::span<const float> values);
  // Rounds to IEEE half (util/half.h).
  void add_f16(std::string name, std::vector<int64_t> shape, std::span<const float> values);

  // The whole file image.
  std::vector<uint8_t> serialize() const;
  // Writes the image; throws Error naming the path (a partial file is removed).
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace chorus
