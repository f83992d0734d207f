// GGUF reader: walks the header, metadata and tensor directory with a
// bounds-checked cursor. The file is untrusted input: every count and length
// is checked against the bytes that remain before anything is allocated for
// it, and all size arithmetic is overflow-checked, so a truncated or hostile
// file ends in an Error, never in a crash, a hang or a huge allocation.
#include "gguf/reader.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <utility>

#include "util/error.h"

namespace chorus::gguf {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader copies little-endian fields straight into host integers");

namespace {

constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// Smallest possible encodings; they bound counts read from the header before
// anything is reserved for them.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                  // empty key, type, uint8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, 1 dim, type, offset

bool is_unsigned(ValueType t) {
  return t == ValueType::kUint8 || t == ValueType::kUint16 || t == ValueType::kUint32 || t == ValueType::kUint64;
}
bool is_signed(ValueType t) {
  return t == ValueType::kInt8 || t == ValueType::kInt16 || t == ValueType::kInt32 || t == ValueType::kInt64;
}
bool is_float(ValueType t) { return t == ValueType::kFloat32 || t == ValueType::kFloat64; }
bool is_integer(ValueType t) { return is_unsigned(t) || is_signed(t); }

// On-disk bytes of a scalar; strings count their 8-byte length only.
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool: return 1;
    case ValueType::kUint16:
    case ValueType::kInt16: return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32: return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
    case ValueType::kString: return 8;
    case ValueType::kArray: return 4 + 8;
  }
  return 1;
}

bool is_known_value_type(uint32_t code) { return code <= static_cast<uint32_t>(ValueType::kFloat64); }

// A name from the file as it appears in error messages: control bytes
// escaped and long names cut, so a hostile file cannot break the one-line
// error or flood it.
std::string printable(std::string_view name) {
  constexpr size_t kMaxShown = 96;
  std::string out;
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kMaxShown) out += fmt::format("...({} bytes)", name.size());
  return out;
}

std::string type_description(const Value& v) {
  if (v.type == ValueType::kArray) return fmt::format("an array of {}", value_type_name(v.elem_type));
  return std::string(value_type_name(v.type));
}

// Reads little-endian fields from the image; every read is bounds-checked and
// failures name the file, what was being read (the context) and the offset.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }
  void set_context(std::string context) { context_ = std::move(context); }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_, context_.empty() ? what : context_ + ": " + what);
  }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      fail(fmt::format("truncated: {} needs {} bytes at offset {}, but the file ends at {}", what, n, pos_,
                       bytes_.size()));
    }
  }

  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view what) {
    const size_t at = pos_;
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining()) {
      fail(fmt::format("{} at offset {} claims {} bytes, but only {} remain in the file", what, at, len, remaining()));
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  uint64_t read_unsigned(ValueType t) {
    switch (t) {
      case ValueType::kUint8: return read<uint8_t>("uint8 value");
      case ValueType::kUint16: return read<uint16_t>("uint16 value");
      case ValueType::kUint32: return read<uint32_t>("uint32 value");
      default: return read<uint64_t>("uint64 value");
    }
  }

  int64_t read_signed(ValueType t) {
    switch (t) {
      case ValueType::kInt8: return read<int8_t>("int8 value");
      case ValueType::kInt16: return read<int16_t>("int16 value");
      case ValueType::kInt32: return read<int32_t>("int32 value");
      default: return read<int64_t>("int64 value");
    }
  }

  double read_float(ValueType t) {
    if (t == ValueType::kFloat32) return read<float>("float32 value");
    return read<double>("float64 value");
  }

  bool read_bool() { return read<uint8_t>("bool value") != 0; }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& path_;
  std::string context_;
  size_t pos_ = 0;
};

// Counts are only known to fit the remaining bytes, and an element in memory
// can be several times its encoded size, so reserve at most this many up
// front and let the vector grow as elements are actually read.
constexpr uint64_t kMaxReserve = 1 << 16;

size_t capped_reserve(uint64_t count) { return static_cast<size_t>(std::min(count, kMaxReserve)); }

template <typename T, typename ReadOne>
std::vector<T> read_elements(uint64_t count, ReadOne read_one) {
  std::vector<T> out;
  out.reserve(capped_reserve(count));
  for (uint64_t i = 0; i < count; ++i) out.push_back(read_one());
  return out;
}

Value read_value(Cursor& c, uint32_t code, size_t type_at) {
  if (!is_known_value_type(code)) c.fail(fmt::format("unknown value type {} at offset {}", code, type_at));
  Value v;
  v.type = static_cast<ValueType>(code);
  if (is_unsigned(v.type)) {
    v.data = c.read_unsigned(v.type);
  } else if (is_signed(v.type)) {
    v.data = c.read_signed(v.type);
  } else if (is_float(v.type)) {
    v.data = c.read_float(v.type);
  } else if (v.type == ValueType::kBool) {
    v.data = c.read_bool();
  } else if (v.type == ValueType::kString) {
    v.data = c.read_string("string value");
  } else {  // array
    const size_t elem_at = c.pos();
    const uint32_t elem = c.read<uint32_t>("array element type");
    if (elem == static_cast<uint32_t>(ValueType::kArray)) {
      c.fail(fmt::format("arrays of arrays are not supported (offset {})", elem_at));
    }
    if (!is_known_value_type(elem)) c.fail(fmt::format("unknown array element type {} at offset {}", elem, elem_at));
    v.elem_type = static_cast<ValueType>(elem);
    const size_t count_at = c.pos();
    const uint64_t count = c.read<uint64_t>("array length");
    if (count > c.remaining() / min_encoded_size(v.elem_type)) {
      c.fail(fmt::format("array length {} at offset {} cannot fit in the {} bytes that remain", count, count_at,
                         c.remaining()));
    }
    const ValueType t = v.elem_type;
    if (is_unsigned(t)) {
      v.data = read_elements<uint64_t>(count, [&] { return c.read_unsigned(t); });
    } else if (is_signed(t)) {
      v.data = read_elements<int64_t>(count, [&] { return c.read_signed(t); });
    } else if (is_float(t)) {
      v.data = read_elements<double>(count, [&] { return c.read_float(t); });
    } else if (t == ValueType::kBool) {
      v.data = read_elements<bool>(count, [&] { return c.read_bool(); });
    } else {
      v.data = read_elements<std::string>(count, [&] { return c.read_string("array string"); });
    }
  }
  return v;
}

// The value of an integer key as uint64, or nullopt when it does not fit.
std::optional<uint64_t> as_uint(const Value& v) {
  if (is_unsigned(v.type)) return std::get<uint64_t>(v.data);
  const int64_t i = std::get<int64_t>(v.data);
  if (i < 0) return std::nullopt;
  return static_cast<uint64_t>(i);
}

std::optional<int64_t> as_int(const Value& v) {
  if (is_signed(v.type)) return std::get<int64_t>(v.data);
  const uint64_t u = std::get<uint64_t>(v.data);
  if (u > kInt64Max) return std::nullopt;
  return static_cast<int64_t>(u);
}

}  // namespace

int64_t TensorInfo::rows() const {
  int64_t r = 1;
  for (size_t i = 1; i < dims.size(); ++i) r *= dims[i];
  return r;
}

Reader Reader::open(const std::string& path) {
  auto map = std::make_shared<MappedFile>(path);
  Reader r = parse(map->bytes(), path);
  r.map_ = std::move(map);
  return r;
}

Reader Reader::parse(std::span<const uint8_t> bytes, std::string name) {
  Reader r;
  r.path_ = std::move(name);
  r.bytes_ = bytes;
  r.parse_image();
  return r;
}

void Reader::parse_image() {
  Cursor c(bytes_, path_);

  // Header.
  if (bytes_.size() < 4) c.fail(fmt::format("too small to be a GGUF file ({} bytes)", bytes_.size()));
  if (std::memcmp(bytes_.data(), "GGUF", 4) != 0) {
    c.fail(fmt::format("not a GGUF file (starts with {:02x} {:02x} {:02x} {:02x}, expected \"GGUF\")", bytes_[0],
                       bytes_[1], bytes_[2], bytes_[3]));
  }
  c.read<uint32_t>("magic");
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) c.fail("GGUF v1 is not supported (re-convert the model with a current llama.cpp)");
  if (version_ == 0x02000000u || version_ == 0x03000000u) c.fail("big-endian GGUF files are not supported");
  if (version_ != 2 && version_ != 3) c.fail(fmt::format("unsupported GGUF version {} (expected 2 or 3)", version_));
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata key count");
  if (n_kv > c.remaining() / kMinKvBytes) {
    c.fail(fmt::format("metadata key count {} cannot fit in a file of {} bytes", n_kv, bytes_.size()));
  }
  if (n_tensors > c.remaining() / kMinTensorInfoBytes) {
    c.fail(fmt::format("tensor count {} cannot fit in a file of {} bytes", n_tensors, bytes_.size()));
  }

  // Metadata.
  kv_.reserve(capped_reserve(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    c.set_context(fmt::format("metadata key #{}", i));
    std::string key = c.read_string("key name");
    c.set_context(fmt::format("key '{}'", printable(key)));
    if (kv_index_.contains(key)) c.fail("duplicate key");
    const size_t type_at = c.pos();
    const uint32_t type = c.read<uint32_t>("value type");
    Value value = read_value(c, type, type_at);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(value));
  }

  c.set_context("general.alignment");
  if (const Value* a = find("general.alignment")) {
    if (!is_integer(a->type)) c.fail(fmt::format("is {}, expected an unsigned integer", type_description(*a)));
    const std::optional<uint64_t> v = as_uint(*a);
    if (!v || *v == 0 || !std::has_single_bit(*v) || *v > std::numeric_limits<size_t>::max()) {
      c.fail(fmt::format("{} is not a power of two", a->to_string()));
    }
    alignment_ = static_cast<size_t>(*v);
  }

  // Tensor directory.
  tensors_.reserve(capped_reserve(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    c.set_context(fmt::format("tensor #{}", i));
    TensorInfo t;
    t.name = c.read_string("tensor name");
    c.set_context(fmt::format("tensor '{}'", printable(t.name)));
    if (tensor_index_.contains(t.name)) c.fail("duplicate tensor name");
    const uint32_t n_dims = c.read<uint32_t>("dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) c.fail(fmt::format("has {} dimensions, expected 1 to {}", n_dims, kMaxDims));
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.read<uint64_t>("dimension");
      if (dim == 0) c.fail(fmt::format("dimension {} is 0", d));
      if (__builtin_mul_overflow(n_elements, dim, &n_elements) || n_elements > kInt64Max) {
        c.fail(fmt::format("element count overflows at dimension {} ({})", d, dim));
      }
      t.dims.push_back(static_cast<int64_t>(dim));
    }
    const size_t type_at = c.pos();
    const uint32_t code = c.read<uint32_t>("tensor type");
    const TypeTraits* traits = find_type_traits(code);
    if (traits == nullptr) c.fail(fmt::format("unknown tensor type code {} at offset {}", code, type_at));
    t.type = static_cast<TensorType>(code);
    t.offset = c.read<uint64_t>("data offset");
    t.n_elements = static_cast<int64_t>(n_elements);
    if (t.dims[0] % traits->block_size != 0) {
      c.fail(fmt::format("row length {} is not a multiple of the {} block size {}", t.dims[0], traits->name,
                         traits->block_size));
    }
    // Whole rows of whole blocks: n_elements / block_size blocks in total.
    const uint64_t blocks = n_elements / static_cast<uint64_t>(traits->block_size);
    uint64_t n_bytes = 0;
    if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(traits->block_bytes), &n_bytes) ||
        n_bytes > bytes_.size()) {
      c.fail(fmt::format("{} {} elements need more bytes than the file holds ({})", n_elements, traits->name,
                         bytes_.size()));
    }
    t.n_bytes = static_cast<size_t>(n_bytes);
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // Data section: starts at the next multiple of the alignment.
  c.set_context("");
  const uint64_t end_of_directory = c.pos();
  uint64_t data_start = 0;
  if (__builtin_add_overflow(end_of_directory, static_cast<uint64_t>(alignment_ - 1), &data_start)) {
    c.fail(fmt::format("alignment {} overflows the data section offset", alignment_));
  }
  data_start &= ~static_cast<uint64_t>(alignment_ - 1);
  data_offset_ = static_cast<size_t>(std::min<uint64_t>(data_start, bytes_.size()));
  if (tensors_.empty()) return;
  if (data_start > bytes_.size()) {
    c.fail(fmt::format("the tensor data section would start at offset {}, past the end of the file ({} bytes)",
                       data_start, bytes_.size()));
  }
  const uint64_t data_size = bytes_.size() - data_start;
  for (TensorInfo& t : tensors_) {
    c.set_context(fmt::format("tensor '{}'", printable(t.name)));
    if (t.offset % alignment_ != 0) {
      c.fail(fmt::format("data offset {} is not a multiple of the alignment {}", t.offset, alignment_));
    }
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      c.fail(
          fmt::format("data at offset {} (+{} bytes) runs past the end of the data section ({} bytes at file "
                      "offset {})",
                      t.offset, t.n_bytes, data_size, data_start));
    }
    t.data = bytes_.data() + data_start + t.offset;
  }

  // Tensors must not share bytes: sort by offset and compare neighbours.
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const TensorInfo& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& prev = *by_offset[i - 1];
    const TensorInfo& cur = *by_offset[i];
    if (prev.offset + prev.n_bytes > cur.offset) {
      c.set_context(fmt::format("tensor '{}'", printable(cur.name)));
      c.fail(fmt::format("data at offset {} overlaps tensor '{}' (offset {}, {} bytes)", cur.offset,
                         printable(prev.name), prev.offset, prev.n_bytes));
    }
  }
}

// ---------------------------------------------------------------------------
// Metadata look-ups.

const Value* Reader::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

const Value& require(const Reader& r, std::string_view key) {
  const Value* v = r.find(key);
  if (v == nullptr) throw Error(r.path(), fmt::format("key '{}' is missing", key));
  return *v;
}

[[noreturn]] void wrong_type(const Reader& r, std::string_view key, const Value& v, std::string_view expected) {
  throw Error(r.path(), fmt::format("key '{}' is {}, expected {}", key, type_description(v), expected));
}

std::string string_of(const Reader& r, std::string_view key, const Value& v) {
  if (v.type != ValueType::kString) wrong_type(r, key, v, "a string");
  return std::get<std::string>(v.data);
}

uint64_t uint_of(const Reader& r, std::string_view key, const Value& v) {
  if (!is_integer(v.type)) wrong_type(r, key, v, "an unsigned integer");
  const std::optional<uint64_t> u = as_uint(v);
  if (!u)
    throw Error(r.path(), fmt::format("key '{}' = {} is negative, expected an unsigned integer", key, v.to_string()));
  return *u;
}

double float_of(const Reader& r, std::string_view key, const Value& v) {
  if (is_float(v.type)) return std::get<double>(v.data);
  if (is_unsigned(v.type)) return static_cast<double>(std::get<uint64_t>(v.data));
  if (is_signed(v.type)) return static_cast<double>(std::get<int64_t>(v.data));
  wrong_type(r, key, v, "a number");
}

bool bool_of(const Reader& r, std::string_view key, const Value& v) {
  if (v.type != ValueType::kBool) wrong_type(r, key, v, "a bool");
  return std::get<bool>(v.data);
}

}  // namespace

std::string Reader::get_string(std::string_view key) const { return string_of(*this, key, require(*this, key)); }

uint64_t Reader::get_uint(std::string_view key) const { return uint_of(*this, key, require(*this, key)); }

int64_t Reader::get_int(std::string_view key) const {
  const Value& v = require(*this, key);
  if (!is_integer(v.type)) wrong_type(*this, key, v, "an integer");
  const std::optional<int64_t> i = as_int(v);
  if (!i) throw Error(path_, fmt::format("key '{}' = {} does not fit a signed 64-bit integer", key, v.to_string()));
  return *i;
}

double Reader::get_float(std::string_view key) const { return float_of(*this, key, require(*this, key)); }

bool Reader::get_bool(std::string_view key) const { return bool_of(*this, key, require(*this, key)); }

const std::vector<std::string>& Reader::get_string_array(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::kArray || v.elem_type != ValueType::kString) wrong_type(*this, key, v, "an array of string");
  return std::get<std::vector<std::string>>(v.data);
}

std::vector<double> Reader::get_float_array(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::kArray) wrong_type(*this, key, v, "an array of numbers");
  if (is_float(v.elem_type)) return std::get<std::vector<double>>(v.data);
  if (is_unsigned(v.elem_type)) {
    const auto& src = std::get<std::vector<uint64_t>>(v.data);
    return std::vector<double>(src.begin(), src.end());
  }
  if (is_signed(v.elem_type)) {
    const auto& src = std::get<std::vector<int64_t>>(v.data);
    return std::vector<double>(src.begin(), src.end());
  }
  wrong_type(*this, key, v, "an array of numbers");
}

std::vector<int64_t> Reader::get_int_array(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::kArray) wrong_type(*this, key, v, "an array of integers");
  if (is_signed(v.elem_type)) return std::get<std::vector<int64_t>>(v.data);
  if (!is_unsigned(v.elem_type)) wrong_type(*this, key, v, "an array of integers");
  const auto& src = std::get<std::vector<uint64_t>>(v.data);
  std::vector<int64_t> out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] > kInt64Max) {
      throw Error(path_, fmt::format("key '{}' element {} = {} does not fit a signed 64-bit integer", key, i, src[i]));
    }
    out.push_back(static_cast<int64_t>(src[i]));
  }
  return out;
}

std::optional<std::string> Reader::find_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return string_of(*this, key, *v);
}

std::optional<uint64_t> Reader::find_uint(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return uint_of(*this, key, *v);
}

std::optional<double> Reader::find_float(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return float_of(*this, key, *v);
}

std::optional<bool> Reader::find_bool(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return bool_of(*this, key, *v);
}

// ---------------------------------------------------------------------------
// Tensor look-ups.

const TensorInfo* Reader::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& Reader::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (t == nullptr) throw Error(path_, fmt::format("tensor '{}' is missing", name));
  return *t;
}

}  // namespace chorus::gguf
