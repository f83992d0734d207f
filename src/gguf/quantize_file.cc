// See quantize_file.h.
#include "gguf/quantize_file.h"

#include <vector>

#include "gguf/quants.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "util/error.h"

namespace chorus::gguf {
namespace {

bool is_float_type(TensorType t) {
  return t == TensorType::kF32 || t == TensorType::kF16 || t == TensorType::kBF16;
}

TensorType target_type(const TensorInfo& t, const QuantizeFileOptions& o) {
  if (t.dims.size() < 2) return t.type;
  TensorType want = o.type;
  if (t.name == "token_embd.weight") {
    want = o.embedding_type.value_or(o.type);
  } else if (t.name == "output.weight") {
    want = o.output_type;
  }
  if (t.cols() % type_traits(want).block_size != 0) return t.type;
  return want;
}

}  // namespace

QuantizeFileReport quantize_file(const std::string& input, const std::string& output,
                                 const QuantizeFileOptions& options,
                                 const std::function<void(size_t, size_t)>& progress) {
  for (const TensorType t : {options.type, options.embedding_type.value_or(options.type), options.output_type}) {
    check(can_quantize(t), "--type", "chorus cannot write {} tensors", type_name(t));
  }
  const auto in = Reader::open(input);
  check(in.find_string("general.architecture").value_or("") == "llama", input,
        "general.architecture is not llama; chorus quantizes llama models only");

  Writer w;
  for (const auto& [key, value] : in.metadata()) {
    if (key != "general.alignment") w.set(key, value);
  }
  w.set_string("general.quantized_by", "chorus");

  QuantizeFileReport report;
  for (const TensorInfo& t : in.tensors()) {
    const TensorType to = target_type(t, options);
    report.bytes_in += t.n_bytes;
    report.bytes_out += row_bytes(to, t.cols()) * t.rows();
    if (to == t.type) {
      w.add_tensor(t.name, t.type, t.dims, std::span<const uint8_t>(t.data, t.n_bytes));
      continue;
    }
    check(is_float_type(t.type) || options.allow_requantize, input,
          "tensor '{}' is already quantized ({}); quantizing it again loses quality "
          "(pass --allow-requantize to do it anyway)",
          t.name, type_name(t.type));
    check(type_traits(t.type).supported, input, "tensor '{}' has type {}, which chorus cannot read", t.name,
          type_name(t.type));
    const TensorInfo* src = &t;
    w.add_tensor(t.name, to, t.dims, [src, to](std::span<uint8_t> dst) {
      const int64_t cols = src->cols();
      const size_t in_row = row_bytes(src->type, cols), out_row = row_bytes(to, cols);
      std::vector<float> row(cols);
      for (int64_t r = 0; r < src->rows(); ++r) {
        dequantize_row(src->type, src->data + r * in_row, row.data(), cols);
        quantize_row(to, row.data(), dst.data() + r * out_row, cols);
      }
    });
  }
  w.write(output, progress);
  return report;
}

}  // namespace chorus::gguf
