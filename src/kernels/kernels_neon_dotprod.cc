// The Arm NEON kernel table for aarch64 CPUs with the dot-product extension
// (Armv8.2-A dotprod: SDOT, on every phone core since Cortex-A55/A75) and
// half-precision arithmetic (neon_kernels-inl.h): every integer dot through
// SDOT. Only this file is compiled with -march=armv8.2-a+dotprod+fp16;
// dispatch.cc hands the table out when the kernel reports both
// (HWCAP_ASIMDDP, HWCAP_FPHP/ASIMDHP).
#include <arm_neon.h>

#include "kernels/isa_tables.h"

namespace chorus::kernels {
namespace {

struct NeonCore {
  static constexpr bool kMmla = false;
  static int32x4_t mmla(int32x4_t acc, int8x16_t, int8x16_t) { return acc; }  // not used
};

}  // namespace
}  // namespace chorus::kernels

#include "kernels/neon_kernels-inl.h"

namespace chorus::kernels {

const KernelTable& neon_dotprod_kernel_table() {
  static constexpr KernelTable table = kernel_table_of(Isa::kNeonDotprod, "neon_dotprod");
  return table;
}

}  // namespace chorus::kernels
