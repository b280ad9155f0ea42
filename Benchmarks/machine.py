"""The machine line every benchmark prints next to its table."""
import os
import platform


def _cpuinfo():
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block ends at the first blank line
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def describe():
    """CPU model, core count and whether the CPU has AVX-512, e.g. 'AMD EPYC, 2 cores, AVX-512 yes'.

    The vector width is stated because a VM may hide the exact model (a Zen 3 and a Zen 4 both read
    'AMD EPYC'), and it decides which kernel set zoo runs. 'AVX-512 ?' where /proc/cpuinfo has no flags.
    """
    info = _cpuinfo()
    name = info.get("model name") or platform.processor() or "unknown CPU"
    flags = info.get("flags")
    avx512 = "?" if flags is None else ("yes" if "avx512f" in flags.split() else "no")
    return f"{name}, {os.cpu_count()} cores, AVX-512 {avx512}"
