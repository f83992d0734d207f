// Counts every heap allocation of a test binary, for the tests that check a
// steady-state loop allocates nothing. Include it in exactly one file of the
// binary: it defines the C allocation functions (malloc, calloc, realloc,
// aligned_alloc, posix_memalign, memalign, valloc, ...) and forwards each to
// glibc's own (__libc_malloc, ...), so every path counts: the C++ operators
// new (libstdc++'s call malloc, or aligned_alloc for over-aligned types),
// AlignedBuffer's aligned_alloc, and C code.
//
// Under AddressSanitizer, whose runtime replaces these functions with its own
// allocator, defining them here would bypass it; the count comes instead from
// the sanitizer's allocation hook (__sanitizer_install_malloc_and_free_hooks),
// which its allocator calls for every one of the same paths.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define CHORUS_COUNT_BY_SANITIZER_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHORUS_COUNT_BY_SANITIZER_HOOK 1
#endif
#endif

namespace chorus::test_util {

inline std::atomic<long> g_heap_allocations{0};

// Allocations by every thread since the program started.
inline long heap_allocations() { return g_heap_allocations.load(std::memory_order_relaxed); }

inline void count_allocation() { g_heap_allocations.fetch_add(1, std::memory_order_relaxed); }

}  // namespace chorus::test_util

#if defined(CHORUS_COUNT_BY_SANITIZER_HOOK)

// From <sanitizer/allocator_interface.h>, which GCC does not install.
using SanitizerMallocHook = void (*)(const volatile void* p, size_t n);
using SanitizerFreeHook = void (*)(const volatile void* p);
extern "C" int __sanitizer_install_malloc_and_free_hooks(SanitizerMallocHook, SanitizerFreeHook);

namespace chorus::test_util {
inline void on_sanitizer_malloc(const volatile void*, size_t) { count_allocation(); }
inline void on_sanitizer_free(const volatile void*) {}  // required: null hooks are refused
// Installed before main by the one file that includes this header.
[[maybe_unused]] static const int kSanitizerHookInstalled =
    __sanitizer_install_malloc_and_free_hooks(on_sanitizer_malloc, on_sanitizer_free);
}  // namespace chorus::test_util

#else

extern "C" {
void* __libc_malloc(size_t n);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t n);
void* __libc_memalign(size_t align, size_t n);
void* __libc_valloc(size_t n);
void* __libc_pvalloc(size_t n);
void __libc_free(void* p);

void* malloc(size_t n) noexcept {
  chorus::test_util::count_allocation();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) noexcept {
  chorus::test_util::count_allocation();
  return __libc_calloc(n, size);
}
// realloc to 0 bytes frees; any other size may move the block.
void* realloc(void* p, size_t n) noexcept {
  if (n != 0) chorus::test_util::count_allocation();
  return __libc_realloc(p, n);
}
void* reallocarray(void* p, size_t n, size_t size) noexcept {
  size_t bytes = 0;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(p, bytes);
}
void* aligned_alloc(size_t align, size_t n) noexcept {
  chorus::test_util::count_allocation();
  return __libc_memalign(align, n);
}
void* memalign(size_t align, size_t n) noexcept {
  chorus::test_util::count_allocation();
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, size_t align, size_t n) noexcept {
  if (align % sizeof(void*) != 0 || (align & (align - 1)) != 0) return EINVAL;
  chorus::test_util::count_allocation();
  void* p = __libc_memalign(align, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(size_t n) noexcept {
  chorus::test_util::count_allocation();
  return __libc_valloc(n);
}
void* pvalloc(size_t n) noexcept {
  chorus::test_util::count_allocation();
  return __libc_pvalloc(n);
}
void free(void* p) noexcept { __libc_free(p); }
}  // extern "C"

#endif
