// GGUF v3 writer. The whole directory is laid out before the first byte is
// written, then tensors are produced one at a time by their Fill callbacks,
// so peak memory is one tensor, not the model. Output follows the layout
// llama.cpp's gguf loader expects: tensors in directory order, each at the
// next multiple of the alignment, offsets relative to the data section.
#include "gguf/writer.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>

#include "util/error.h"

namespace chorus::gguf {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
// llama.cpp rejects tensor names that do not fit GGML_MAX_NAME (64) with NUL.
constexpr size_t kMaxTensorName = 63;

// Buffered file that turns every failure into an Error naming the path, and
// removes a half-written file unless finish() succeeded (only a regular file:
// writing to a device such as /dev/null must never unlink it).
class OutFile {
 public:
  explicit OutFile(const std::string& path) : path_(path) {
    f_ = std::fopen(path.c_str(), "wb");
    if (f_ == nullptr) throw Error(path, fmt::format("cannot create: {}", std::strerror(errno)));
    struct stat st {};
    regular_ = ::fstat(::fileno(f_), &st) == 0 && S_ISREG(st.st_mode);
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  }
  ~OutFile() {
    if (f_ != nullptr) {
      std::fclose(f_);
      remove_partial();
    }
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;

  void write(const void* data, size_t n) {
    if (n > 0 && std::fwrite(data, 1, n, f_) != n) fail();
    pos_ += n;
  }
  template <typename T>
  void put(T v) {
    static_assert(std::is_arithmetic_v<T>);
    write(&v, sizeof(v));  // the host is little-endian, as GGUF is (see reader.cc)
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    write(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t kZeros[256] = {};
    uint64_t n = (alignment - pos_ % alignment) % alignment;
    while (n > 0) {
      const size_t chunk = n < sizeof(kZeros) ? static_cast<size_t>(n) : sizeof(kZeros);
      write(kZeros, chunk);
      n -= chunk;
    }
  }
  uint64_t pos() const { return pos_; }
  const std::string& path() const { return path_; }

  // Flushes and closes; a full disk often only shows up here.
  void finish() {
    if (std::fflush(f_) != 0) fail();
    std::FILE* f = std::exchange(f_, nullptr);
    if (std::fclose(f) != 0) {
      const int e = errno;
      remove_partial();
      throw Error(path_, fmt::format("cannot write: {}", std::strerror(e)));
    }
  }

 private:
  [[noreturn]] void fail() { throw Error(path_, fmt::format("cannot write: {}", std::strerror(errno))); }
  void remove_partial() {
    if (regular_) std::remove(path_.c_str());
  }

  std::string path_;
  std::FILE* f_ = nullptr;
  bool regular_ = false;
  uint64_t pos_ = 0;
};

bool fits(ValueType t, uint64_t v) {
  switch (t) {
    case ValueType::kUint8: return v <= std::numeric_limits<uint8_t>::max();
    case ValueType::kUint16: return v <= std::numeric_limits<uint16_t>::max();
    case ValueType::kUint32: return v <= std::numeric_limits<uint32_t>::max();
    default: return true;
  }
}

bool fits(ValueType t, int64_t v) {
  switch (t) {
    case ValueType::kInt8: return v >= INT8_MIN && v <= INT8_MAX;
    case ValueType::kInt16: return v >= INT16_MIN && v <= INT16_MAX;
    case ValueType::kInt32: return v >= INT32_MIN && v <= INT32_MAX;
    default: return true;
  }
}

// Which variant alternative holds a scalar of type t (index into Value::data).
template <typename T>
constexpr bool holds_scalar_of(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kUint16:
    case ValueType::kUint32:
    case ValueType::kUint64: return std::is_same_v<T, uint64_t>;
    case ValueType::kInt8:
    case ValueType::kInt16:
    case ValueType::kInt32:
    case ValueType::kInt64: return std::is_same_v<T, int64_t>;
    case ValueType::kFloat32:
    case ValueType::kFloat64: return std::is_same_v<T, double>;
    case ValueType::kBool: return std::is_same_v<T, bool>;
    case ValueType::kString: return std::is_same_v<T, std::string>;
    case ValueType::kArray: return false;
  }
  return false;
}

// Writes one scalar of type t; `where` names the key for errors.
template <typename T>
void put_scalar(OutFile& out, ValueType t, const T& v, const std::string& where) {
  if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t>) {
    if (!fits(t, v)) throw Error(where, fmt::format("{} does not fit {}", v, value_type_name(t)));
  }
  switch (t) {
    case ValueType::kUint8: out.put(static_cast<uint8_t>(v)); break;
    case ValueType::kInt8: out.put(static_cast<int8_t>(v)); break;
    case ValueType::kUint16: out.put(static_cast<uint16_t>(v)); break;
    case ValueType::kInt16: out.put(static_cast<int16_t>(v)); break;
    case ValueType::kUint32: out.put(static_cast<uint32_t>(v)); break;
    case ValueType::kInt32: out.put(static_cast<int32_t>(v)); break;
    case ValueType::kUint64: out.put(static_cast<uint64_t>(v)); break;
    case ValueType::kInt64: out.put(static_cast<int64_t>(v)); break;
    case ValueType::kFloat32: out.put(static_cast<float>(v)); break;
    case ValueType::kFloat64: out.put(static_cast<double>(v)); break;
    case ValueType::kBool: out.put(static_cast<uint8_t>(v ? 1 : 0)); break;
    default: break;  // strings are handled by the caller
  }
}

void put_value(OutFile& out, const std::string& key, const Value& value) {
  const std::string where = fmt::format("{}: key '{}'", out.path(), key);
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (requires { typename T::value_type; } && !std::is_same_v<T, std::string>) {
          using E = typename T::value_type;
          if (value.type != ValueType::kArray || !holds_scalar_of<E>(value.elem_type)) {
            throw Error(where, fmt::format("value of type {} holds an array that does not match it",
                                           value_type_name(value.type)));
          }
          out.put<uint32_t>(static_cast<uint32_t>(ValueType::kArray));
          out.put<uint32_t>(static_cast<uint32_t>(value.elem_type));
          out.put<uint64_t>(v.size());
          for (const auto& e : v) {
            if constexpr (std::is_same_v<E, std::string>) {
              out.put_string(e);
            } else {
              put_scalar(out, value.elem_type, static_cast<E>(e), where);
            }
          }
        } else {
          if (!holds_scalar_of<T>(value.type)) {
            throw Error(where,
                        fmt::format("value of type {} holds data that does not match it", value_type_name(value.type)));
          }
          out.put<uint32_t>(static_cast<uint32_t>(value.type));
          if constexpr (std::is_same_v<T, std::string>) {
            out.put_string(v);
          } else {
            put_scalar(out, value.type, v, where);
          }
        }
      },
      value.data);
}

// Validates a tensor's shape and returns its byte size (overflow-checked).
size_t tensor_bytes(const std::string& name, TensorType type, const std::vector<int64_t>& dims) {
  const std::string where = fmt::format("tensor '{}'", name);
  const TypeTraits* traits = find_type_traits(static_cast<uint32_t>(type));
  check(traits != nullptr, where, "unknown tensor type code {}", static_cast<uint32_t>(type));
  check(!dims.empty() && dims.size() <= 4, where, "has {} dimensions, expected 1 to 4", dims.size());
  for (int64_t d : dims) check(d > 0, where, "dimension {} is not positive", d);
  check(dims[0] % traits->block_size == 0, where, "row length {} is not a multiple of the {} block size {}", dims[0],
        traits->name, traits->block_size);
  uint64_t rows = 1;
  for (size_t i = 1; i < dims.size(); ++i) {
    check(!__builtin_mul_overflow(rows, static_cast<uint64_t>(dims[i]), &rows), where, "size overflows");
  }
  uint64_t bytes = 0;
  check(!__builtin_mul_overflow(static_cast<uint64_t>(row_bytes(type, dims[0])), rows, &bytes) &&
            bytes <= std::numeric_limits<size_t>::max() / 2,
        where, "{} tensor is too large", traits->name);
  return static_cast<size_t>(bytes);
}

}  // namespace

void Writer::set(std::string key, Value value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

void Writer::set_string(std::string key, std::string v) {
  set(std::move(key), Value{ValueType::kString, ValueType::kUint32, std::move(v)});
}
void Writer::set_uint32(std::string key, uint32_t v) {
  set(std::move(key), Value{ValueType::kUint32, ValueType::kUint32, uint64_t{v}});
}
void Writer::set_int32(std::string key, int32_t v) {
  set(std::move(key), Value{ValueType::kInt32, ValueType::kUint32, int64_t{v}});
}
void Writer::set_uint64(std::string key, uint64_t v) {
  set(std::move(key), Value{ValueType::kUint64, ValueType::kUint32, v});
}
void Writer::set_float32(std::string key, float v) {
  set(std::move(key), Value{ValueType::kFloat32, ValueType::kUint32, double{v}});
}
void Writer::set_bool(std::string key, bool v) { set(std::move(key), Value{ValueType::kBool, ValueType::kUint32, v}); }
void Writer::set_string_array(std::string key, std::vector<std::string> v) {
  set(std::move(key), Value{ValueType::kArray, ValueType::kString, std::move(v)});
}
void Writer::set_float32_array(std::string key, std::vector<float> v) {
  set(std::move(key), Value{ValueType::kArray, ValueType::kFloat32, std::vector<double>(v.begin(), v.end())});
}
void Writer::set_int32_array(std::string key, std::vector<int32_t> v) {
  set(std::move(key), Value{ValueType::kArray, ValueType::kInt32, std::vector<int64_t>(v.begin(), v.end())});
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<int64_t> dims, Fill fill) {
  const std::string where = fmt::format("tensor '{}'", name);
  check(!name.empty() && name.size() <= kMaxTensorName, where, "name must be 1 to {} bytes long", kMaxTensorName);
  check(!tensor_names_.contains(name), where, "added twice");
  tensor_bytes(name, type, dims);  // rejects bad shapes now, not at write time
  tensor_names_.insert(name);
  tensors_.push_back(PendingTensor{std::move(name), type, std::move(dims), std::move(fill)});
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<int64_t> dims, std::span<const uint8_t> data) {
  const size_t expected = tensor_bytes(name, type, dims);
  check(data.size() == expected, fmt::format("tensor '{}'", name), "got {} bytes of data, expected {}", data.size(),
        expected);
  auto copy = std::make_shared<const std::vector<uint8_t>>(data.begin(), data.end());
  add_tensor(std::move(name), type, std::move(dims),
             [copy](std::span<uint8_t> dst) { std::memcpy(dst.data(), copy->data(), copy->size()); });
}

void Writer::write(const std::string& path, const std::function<void(size_t, size_t)>& progress) const {
  uint64_t alignment = kDefaultAlignment;
  for (const auto& [key, value] : kv_) {
    if (key != "general.alignment") continue;
    const uint64_t* a = std::get_if<uint64_t>(&value.data);
    check(value.type == ValueType::kUint32 && a != nullptr && *a > 0 && (*a & (*a - 1)) == 0, path,
          "general.alignment must be a uint32 power of two");
    alignment = *a;
  }

  // Lay out the data section before writing anything.
  std::vector<size_t> sizes;
  std::vector<uint64_t> offsets;
  uint64_t data_size = 0;
  for (const PendingTensor& t : tensors_) {
    const size_t n = tensor_bytes(t.name, t.type, t.dims);
    sizes.push_back(n);
    offsets.push_back(data_size);
    data_size += (n + alignment - 1) / alignment * alignment;
  }

  OutFile out(path);
  out.write("GGUF", 4);
  out.put<uint32_t>(kVersion);
  out.put<uint64_t>(tensors_.size());
  out.put<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    out.put_string(key);
    put_value(out, key, value);
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& t = tensors_[i];
    out.put_string(t.name);
    out.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) out.put<uint64_t>(static_cast<uint64_t>(d));
    out.put<uint32_t>(static_cast<uint32_t>(t.type));
    out.put<uint64_t>(offsets[i]);
  }
  out.pad_to(alignment);

  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& t = tensors_[i];
    std::vector<uint8_t> buf(sizes[i]);
    if (t.fill) t.fill(std::span<uint8_t>(buf));
    out.write(buf.data(), buf.size());
    out.pad_to(alignment);
    if (progress) progress(i + 1, tensors_.size());
  }
  out.finish();
}

}  // namespace chorus::gguf
