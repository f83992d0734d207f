// Runtime choice of the kernel table: every table compiled into this build
// whose instructions the CPU has, best first; CHORUS_ISA picks one by name.
#include <cstdlib>
#include <string>

#include "kernels/isa_tables.h"
#include "util/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(CHORUS_KERNELS_NEON_DOTPROD) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace chorus::kernels {
namespace {

#if defined(CHORUS_KERNELS_AVX2)
bool cpu_has_avx2_fma_f16c() {
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the YMM state.
  // clang cannot name F16C there, so read its CPUID bit (leaf 1, ECX 29).
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}
#endif

#if defined(CHORUS_KERNELS_AVXVNNI)
// VEX-encoded VNNI on top of AVX2 (Alder Lake and later client cores, Zen 5):
// CPUID leaf 7, sub-leaf 1, EAX bit 4 (clang 14 cannot name it in
// __builtin_cpu_supports).
bool cpu_has_avxvnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool vnni = __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4)) != 0;
  return cpu_has_avx2_fma_f16c() && vnni;
}
#endif

#if defined(CHORUS_KERNELS_AVX512VNNI)
// __builtin_cpu_supports reports AVX-512 features only when the OS saves
// the ZMM and mask registers (XCR0), so a kernel without AVX-512 support
// gets a lesser table.
bool cpu_has_avx512vnni() {
  return cpu_has_avx2_fma_f16c() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#endif

#if defined(CHORUS_KERNELS_NEON_DOTPROD)
// NEON itself is part of every aarch64 CPU; the SDOT instructions
// (ARMv8.2-A dotprod, optional before ARMv8.4-A) and f16 arithmetic are
// what the table needs on top. The kernel reports them in the aux vector.
bool cpu_has_neon_dotprod() {
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  return (hwcap & HWCAP_ASIMDDP) != 0 && (hwcap & HWCAP_FPHP) != 0 && (hwcap & HWCAP_ASIMDHP) != 0;
#else
  return false;  // no way to ask on this OS yet: stay on the generic table
#endif
}
#endif

#if defined(CHORUS_KERNELS_NEON_I8MM)
// SMMLA (Armv8.6-A I8MM, optional from Armv8.2-A) on top of what
// neon_dotprod needs: the i8mm table uses SDOT and f16 too.
bool cpu_has_neon_i8mm() {
#if defined(__linux__)
  return cpu_has_neon_dotprod() && (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#else
  return false;
#endif
}
#endif

struct Candidate {
  bool (*supported)();
  const KernelTable& (*table)();
};

// Best first; generic last (it runs anywhere).
constexpr Candidate kCandidates[] = {
#if defined(CHORUS_KERNELS_AVX512VNNI)
    {cpu_has_avx512vnni, avx512vnni_kernel_table},
#endif
#if defined(CHORUS_KERNELS_AVXVNNI)
    {cpu_has_avxvnni, avxvnni_kernel_table},
#endif
#if defined(CHORUS_KERNELS_AVX2)
    {cpu_has_avx2_fma_f16c, avx2_kernel_table},
#endif
#if defined(CHORUS_KERNELS_NEON_I8MM)
    {cpu_has_neon_i8mm, neon_i8mm_kernel_table},
#endif
#if defined(CHORUS_KERNELS_NEON_DOTPROD)
    {cpu_has_neon_dotprod, neon_dotprod_kernel_table},
#endif
    {[] { return true; }, generic_kernel_table},
};

std::vector<const KernelTable*> supported_best_first() {
  std::vector<const KernelTable*> out;
  for (const Candidate& c : kCandidates) {
    if (c.supported()) out.push_back(&c.table());
  }
  return out;
}

const KernelTable& choose_table() {
  const std::vector<const KernelTable*> tables = supported_best_first();
  const char* wanted = std::getenv("CHORUS_ISA");
  if (wanted == nullptr || *wanted == '\0') return *tables.front();
  std::string names;
  for (const KernelTable* t : tables) {
    if (t->name == wanted) return *t;
    names += names.empty() ? "" : ", ";
    names += t->name;
  }
  throw Error("CHORUS_ISA", fmt::format("'{}' is not available on this CPU or in this build (available: {})",
                                        wanted, names));
}

}  // namespace

const KernelTable& best_kernel_table() {
  static const KernelTable& table = choose_table();
  return table;
}

std::vector<const KernelTable*> available_kernel_tables() {
  std::vector<const KernelTable*> tables = supported_best_first();
  return {tables.rbegin(), tables.rend()};  // generic first
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kGeneric: return "generic";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvxVnni: return "avxvnni";
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kNeonDotprod: return "neon_dotprod";
    case Isa::kNeonI8mm: return "neon_i8mm";
  }
  return "unknown";
}

}  // namespace chorus::kernels
