#ifndef ZOO_PREFETCH_H
#define ZOO_PREFETCH_H

/// Asks the CPU to bring the cache line holding `address` into every cache level (a hint: it never
/// faults, whatever the address, and does not wait). Inlined into the Swift kernels that call it.
static inline __attribute__((always_inline)) void zoo_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
