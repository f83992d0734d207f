// The AVX2 + FMA + F16C kernel table (x86_kernels-inl.h). Only this file is
// compiled with those flags; dispatch.cc hands the table out on CPUs that
// have them. Integer dots go through vpmaddubsw (u8 x s8, pairs summed in
// i16) and vpmaddwd.
#include <immintrin.h>

#include "kernels/isa_tables.h"

namespace chorus::kernels {
namespace {

struct X86Core {
  static constexpr bool kDpbusd = false;
  static __m256i dpbusd(__m256i acc, __m256i, __m256i) { return acc; }  // not used
};

}  // namespace
}  // namespace chorus::kernels

#include "kernels/x86_kernels-inl.h"

namespace chorus::kernels {

const KernelTable& avx2_kernel_table() {
  static constexpr KernelTable table = kernel_table_of(Isa::kAvx2, "avx2");
  return table;
}

}  // namespace chorus::kernels
