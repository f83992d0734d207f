// The AVX-VNNI kernel table (x86_kernels-inl.h): the AVX2 table with its
// integer dots as VEX-encoded vpdpbusd on 256 bits (Intel Alder Lake and
// later client cores, AMD Zen 5). Only this file is compiled with
// -mavxvnni; dispatch.cc hands the table out on CPUs that have it.
#include <immintrin.h>

#include "kernels/isa_tables.h"

namespace chorus::kernels {
namespace {

struct X86Core {
  static constexpr bool kDpbusd = true;
  static __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
};

}  // namespace
}  // namespace chorus::kernels

#include "kernels/x86_kernels-inl.h"

namespace chorus::kernels {

const KernelTable& avxvnni_kernel_table() {
  static constexpr KernelTable table = kernel_table_of(Isa::kAvxVnni, "avxvnni");
  return table;
}

}  // namespace chorus::kernels
