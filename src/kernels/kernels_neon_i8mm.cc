// The Arm NEON kernel table for aarch64 CPUs with the int8 matrix multiply
// extension (Armv8.6-A I8MM: SMMLA, on Cortex-X2/X3/X4, A710/A715/A720 and
// later) besides dotprod and f16 (neon_kernels-inl.h): the W4A8 product
// runs activation rows in pairs through SMMLA, 32 products per instruction
// against SDOT's 16; a remainder of 1 or 3 rows and W8A8 stay on SDOT. The
// same bits as neon_dotprod (tested). Only this file is compiled with
// -march=armv8.2-a+dotprod+fp16+i8mm; dispatch.cc hands the table out when
// the kernel also reports HWCAP2_I8MM.
#include <arm_neon.h>

#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "kernels_neon_i8mm.cc needs -march=...+i8mm (see CMakeLists.txt)"
#endif

#include "kernels/isa_tables.h"

namespace chorus::kernels {
namespace {

struct NeonCore {
  static constexpr bool kMmla = true;
  static int32x4_t mmla(int32x4_t acc, int8x16_t a, int8x16_t b) { return vmmlaq_s32(acc, a, b); }
};

}  // namespace
}  // namespace chorus::kernels

#include "kernels/neon_kernels-inl.h"

namespace chorus::kernels {

const KernelTable& neon_i8mm_kernel_table() {
  static constexpr KernelTable table = kernel_table_of(Isa::kNeonI8mm, "neon_i8mm");
  return table;
}

}  // namespace chorus::kernels
