// The AVX-512 VNNI kernel table (x86_kernels-inl.h): the AVX2 table with
// its integer dots as EVEX-encoded vpdpbusd, on 512 bits (two row groups
// per pass, Lanes16) for W4A8 calls of 4 rows or more and on 256 bits
// (AVX512-VL) otherwise, and the 32 vector registers of AVX-512 for the
// compiler to keep accumulators in (Intel Ice Lake server and later, AMD
// Zen 4 and later). Only this file is compiled with AVX-512 flags;
// dispatch.cc hands the table out on CPUs (and kernels) that have them.
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics start results from _mm512_undefined_*(),
// which -Wmaybe-uninitialized reports (GCC bug 105593); nothing here is.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/isa_tables.h"

namespace chorus::kernels {
namespace {

struct X86Core {
  static constexpr bool kDpbusd = true;
  static __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
};

}  // namespace
}  // namespace chorus::kernels

#include "kernels/x86_kernels-inl.h"

namespace chorus::kernels {

const KernelTable& avx512vnni_kernel_table() {
  static constexpr KernelTable table = kernel_table_of(Isa::kAvx512Vnni, "avx512vnni");
  return table;
}

}  // namespace chorus::kernels
