#ifndef ZOO_CPU_FEATURES_H
#define ZOO_CPU_FEATURES_H

/// What the running CPU and operating system support, for choosing a kernel set at start-up.
/// Each returns 1 when every listed feature is usable (the CPU has it and the OS saves its
/// registers), else 0. On non-x86 machines both return 0.

/// AVX2 and FMA3 plus BMI1/2, LZCNT, MOVBE, F16C and POPCNT (the Haswell set the "avx2" kernels are
/// compiled for: the compiler may use any of them).
int zoo_cpu_has_avx2_fma(void);

/// AVX-512 F, CD, BW, DQ and VL plus everything `zoo_cpu_has_avx2_fma` checks (the Skylake-AVX512
/// set the "avx512" kernels are compiled for).
int zoo_cpu_has_avx512(void);

#endif
