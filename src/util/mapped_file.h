// Read-only memory map of a whole file (RAII). Model weights are used in place
// from the map, so loading a model costs page-ins, not copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace chorus {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws Error naming the path when it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace chorus
