// The per-instruction-set kernel tables, one kernels_<isa>.cc each, compiled
// with that instruction set's flags only (see CMakeLists.txt); dispatch.cc
// hands one out after checking the CPU. Internal to the kernels layer.
//
// Adding an instruction set: write kernels_<isa>.cc defining <isa>_kernel_table(),
// give it its flags and CHORUS_KERNELS_<ISA> in CMakeLists.txt, declare it
// here and list it in dispatch.cc with its CPU check.
#pragma once

#include "kernels/kernels.h"

namespace chorus::kernels {

const KernelTable& generic_kernel_table();
#if defined(CHORUS_KERNELS_AVX2)
const KernelTable& avx2_kernel_table();
#endif
#if defined(CHORUS_KERNELS_AVXVNNI)
const KernelTable& avxvnni_kernel_table();
#endif
#if defined(CHORUS_KERNELS_AVX512VNNI)
const KernelTable& avx512vnni_kernel_table();
#endif
#if defined(CHORUS_KERNELS_NEON_DOTPROD)
const KernelTable& neon_dotprod_kernel_table();
#endif
#if defined(CHORUS_KERNELS_NEON_I8MM)
const KernelTable& neon_i8mm_kernel_table();
#endif

}  // namespace chorus::kernels
