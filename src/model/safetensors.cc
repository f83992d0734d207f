#include "model/safetensors.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/half.h"

namespace chorus {
namespace {

using nlohmann::json;

// The reference implementation refuses larger headers too; it bounds the
// memory a hostile file can make the JSON parser take.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Offsets read as uint64 are stored in size_t without a range check.
static_assert(sizeof(size_t) == sizeof(uint64_t), "64-bit hosts only");

struct DtypeInfo {
  std::string_view name;
  size_t bytes;
};

// The safetensors dtypes whose elements are whole bytes. Sub-byte types
// (F4, F6_*) are not listed: no LoRA is stored in them and their byte count
// rules differ.
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"F64", 8}, {"I64", 8}, {"U64", 8},
};

size_t dtype_bytes(std::string_view name) {
  for (const auto& d : kDtypes) {
    if (d.name == name) return d.bytes;
  }
  return 0;
}

std::string tensor_where(const std::string& path, std::string_view name) {
  return fmt::format("{}: tensor '{}'", path, name);
}

// Reads one header entry: {"dtype": .., "shape": [..], "data_offsets": [b, e]}.
// Offsets are checked against the data section later, once all are known.
SafetensorsTensor parse_entry(const std::string& path, const std::string& name, const json& v) {
  const std::string where = tensor_where(path, name);
  check(v.is_object(), where, "header entry is not an object");
  SafetensorsTensor t;
  t.name = name;

  const auto dtype = v.find("dtype");
  check(dtype != v.end() && dtype->is_string(), where, "missing or non-string 'dtype'");
  t.dtype = dtype->get<std::string>();
  t.dtype_bytes = dtype_bytes(t.dtype);
  check(t.dtype_bytes > 0, where, "unknown dtype '{}'", t.dtype);

  const auto shape = v.find("shape");
  check(shape != v.end() && shape->is_array(), where, "missing or non-array 'shape'");
  uint64_t n = 1;
  bool overflow = false, has_zero = false;
  for (const json& d : *shape) {
    if (!d.is_number_unsigned()) {
      throw Error(where, fmt::format("shape entry {} is not a non-negative integer", d.dump()));
    }
    const uint64_t dim = d.get<uint64_t>();
    check(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where,
          "shape entry {} is too large", dim);
    t.shape.push_back(static_cast<int64_t>(dim));
    overflow = overflow || __builtin_mul_overflow(n, dim, &n);
    has_zero = has_zero || dim == 0;
  }
  // A zero dimension makes an empty tensor whatever the others say. (The
  // wrapped product may be 0 without one: 2^62 x 2^62.)
  if (has_zero) {
    n = 0;
    overflow = false;
  }
  uint64_t n_bytes = 0;
  overflow = overflow || __builtin_mul_overflow(n, static_cast<uint64_t>(t.dtype_bytes), &n_bytes);
  if (overflow || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw Error(where, fmt::format("shape {} has too many elements", shape->dump()));
  }
  t.n_elements = static_cast<int64_t>(n);

  const auto offsets = v.find("data_offsets");
  check(offsets != v.end() && offsets->is_array() && offsets->size() == 2, where,
        "missing 'data_offsets' or not a pair");
  if (!(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    throw Error(where,
                fmt::format("data_offsets {} are not non-negative integers", offsets->dump()));
  }
  const uint64_t begin = (*offsets)[0].get<uint64_t>();
  const uint64_t end = (*offsets)[1].get<uint64_t>();
  check(begin <= end, where, "data_offsets [{}, {}] end before they begin", begin, end);
  if (end - begin != n_bytes) {
    throw Error(where,
                fmt::format("data_offsets [{}, {}] hold {} bytes but {} {} of shape {} needs {}",
                            begin, end, end - begin, n, t.dtype, shape->dump(), n_bytes));
  }
  t.offset = static_cast<size_t>(begin);
  t.n_bytes = static_cast<size_t>(n_bytes);
  return t;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto map = std::make_shared<MappedFile>(path);
  SafetensorsFile f;
  f.path_ = path;
  f.bytes_ = map->bytes();
  f.map_ = std::move(map);
  f.parse_image();
  return f;
}

SafetensorsFile SafetensorsFile::parse(std::span<const uint8_t> bytes, std::string name) {
  SafetensorsFile f;
  f.path_ = std::move(name);
  f.bytes_ = bytes;
  f.parse_image();
  return f;
}

void SafetensorsFile::parse_image() {
  const size_t size = bytes_.size();
  check(size >= 8, path_, "file is {} bytes, too short for a safetensors header", size);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes_[i];
  check(header_len <= kMaxHeaderBytes, path_, "header length {} is absurd", header_len);
  check(header_len <= size - 8, path_, "header length {} runs past the end of the file ({} bytes)",
        header_len, size);
  data_offset_ = 8 + static_cast<size_t>(header_len);
  const size_t data_size = size - data_offset_;

  json header;
  try {
    const auto* text = reinterpret_cast<const char*>(bytes_.data() + 8);
    header = json::parse(text, text + header_len);
  } catch (const json::exception& e) {
    throw Error(path_, fmt::format("header is not valid JSON: {}", e.what()));
  }
  check(header.is_object(), path_, "header is not a JSON object");

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      check(value.is_object(), path_, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        check(mv.is_string(), path_, "__metadata__ value of '{}' is not a string", mk);
        metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    tensors_.push_back(parse_entry(path_, key, value));
  }

  // The data section must be covered exactly: tensors back to back from 0
  // to its end, in offset order (the reference reader's rule, which also
  // rules out overlapping tensors).
  std::stable_sort(tensors_.begin(), tensors_.end(),
                   [](const auto& a, const auto& b) { return a.offset < b.offset; });
  size_t expect = 0;
  for (auto& t : tensors_) {
    const std::string where = tensor_where(path_, t.name);
    check(t.offset == expect, where, "data_offsets start at {}, expected {} ({})", t.offset, expect,
          t.offset < expect ? "overlaps the previous tensor" : "leaves a gap");
    check(t.n_bytes <= data_size - t.offset, where,
          "data [{}, {}) runs past the end of the data section ({} bytes; file truncated?)",
          t.offset, t.offset + t.n_bytes, data_size);
    t.data = bytes_.data() + data_offset_ + t.offset;
    expect = t.offset + t.n_bytes;
  }
  check(expect == data_size, path_,
        "{} bytes after the last tensor are not described by the header", data_size - expect);
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

bool SafetensorsFile::readable_dtype(std::string_view dtype) {
  return dtype == "F32" || dtype == "F16" || dtype == "BF16";
}

std::vector<float> SafetensorsFile::read_f32(const SafetensorsTensor& t) const {
  check(readable_dtype(t.dtype), tensor_where(path_, t.name),
        "dtype {} is not supported (F32, F16 or BF16 only)", t.dtype);
  std::vector<float> out(static_cast<size_t>(t.n_elements));
  if (t.dtype == "F32") {
    // Little-endian hosts only, like the GGUF reader. An empty tensor has no
    // buffer: memcpy must not see its null pointer.
    if (t.n_bytes > 0) std::memcpy(out.data(), t.data, t.n_bytes);
    return out;
  }
  const bool f16 = t.dtype == "F16";
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, t.data + 2 * i, 2);
    out[i] = f16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
  return out;
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

void SafetensorsWriter::add(std::string name, std::string dtype, std::vector<int64_t> shape,
                            std::span<const uint8_t> data) {
  const size_t elem = dtype_bytes(dtype);
  check(elem > 0, name, "unknown safetensors dtype '{}'", dtype);
  check(name != "__metadata__", name, "reserved tensor name");
  int64_t n = 1;
  for (int64_t d : shape) {
    check(d >= 0 && !__builtin_mul_overflow(n, d, &n), name, "bad shape");
  }
  check(data.size() == static_cast<size_t>(n) * elem, name, "{} bytes given, shape needs {}",
        data.size(), static_cast<size_t>(n) * elem);
  for (const auto& e : entries_) check(e.name != name, name, "duplicate tensor name");
  entries_.push_back({std::move(name), std::move(dtype), std::move(shape),
                      std::vector<uint8_t>(data.begin(), data.end())});
}

void SafetensorsWriter::add_f32(std::string name, std::vector<int64_t> shape,
                                std::span<const float> values) {
  add(std::move(name), "F32", std::move(shape),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                               values.size() * sizeof(float)));
}

void SafetensorsWriter::add_f16(std::string name, std::vector<int64_t> shape,
                                std::span<const float> values) {
  std::vector<uint8_t> bytes(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t h = f32_to_f16(values[i]);
    std::memcpy(bytes.data() + 2 * i, &h, 2);
  }
  add(std::move(name), "F16", std::move(shape), bytes);
}

std::vector<uint8_t> SafetensorsWriter::serialize() const {
  // nlohmann's object keeps keys sorted; the order of the header does not
  // matter to readers, the data follows insertion order.
  json header = json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  size_t offset = 0;
  for (const auto& e : entries_) {
    header[e.name] = {
        {"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.data.size()}}};
    offset += e.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-aligned, as the reference writes
  std::vector<uint8_t> out(8 + text.size() + offset);
  const uint64_t len = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(len >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  size_t pos = 8 + text.size();
  for (const auto& e : entries_) {
    if (!e.data.empty()) std::memcpy(out.data() + pos, e.data.data(), e.data.size());
    pos += e.data.size();
  }
  return out;
}

void SafetensorsWriter::write(const std::string& path) const {
  const std::vector<uint8_t> image = serialize();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    check(out.is_open(), path, "cannot open for writing");
    out.write(reinterpret_cast<const char*>(image.data()),
              static_cast<std::streamsize>(image.size()));
    out.close();
    if (out) return;
  }
  std::error_code ec;
  std::filesystem::remove(path, ec);
  throw Error(path, "write failed");
}

}  // namespace chorus
