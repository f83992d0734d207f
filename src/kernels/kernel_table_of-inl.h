// The one constructor of a KernelTable, shared by every table: the source
// of a table (kernels_generic.cc, x86_kernels-inl.h, neon_kernels-inl.h)
// defines its functions in chorus::kernels's anonymous namespace, includes
// this file after them, and builds its table with kernel_table_of(isa,
// name). The names below resolve to that file's functions, so a new
// KernelTable entry is one line here plus its function in each table's code.
// No include guard: included once per table file, on purpose.
#include <string_view>

#include "kernels/kernels.h"

namespace chorus::kernels {
namespace {

constexpr KernelTable kernel_table_of(Isa isa, std::string_view name) {
  return {
      .isa = isa,
      .name = name,
      .quantize_activations = quantize_activations,
      .matmul_int4 = matmul_int4,
      .matmul_int8 = matmul_int8,
      .matmul_f32 = matmul_f32,
      .rmsnorm = rmsnorm,
      .dot = dot,
      .axpy = axpy,
      .softmax = softmax,
      .silu_mul = silu_mul,
      .attend = attend,
      .attend_f16 = attend_f16,
      .lora_shrink = lora_shrink,
      .lora_expand = lora_expand,
  };
}

}  // namespace
}  // namespace chorus::kernels
