"""The machine line every benchmark prints next to its table."""
import os
import platform


def describe():
    """CPU model and core count, e.g. 'AMD EPYC, 2 cores'."""
    name = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"
