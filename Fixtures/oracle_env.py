"""The shared start of the Fixtures scripts: a deterministic process and the pinned reference versions.

Each script calls `deterministic()` before importing torch, then `require(...)` with the versions its
outputs were made with (the oracle venv, ../shared/oracle/setup, installs exactly these).
"""
import json
import os
import re
import sys

# Set order inside pickles (hash seed), torch's portable kernels (f32 -> bf16 rounds NaN to 0x7FC0 there,
# 0xFFFF in the AVX ones), one thread: re-running a script reproduces its files byte for byte.
DETERMINISTIC_ENV = {"PYTHONHASHSEED": "0", "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}


def deterministic():
    """Re-executes the running script with DETERMINISTIC_ENV unless it already runs with it."""
    if any(os.environ.get(k) != v for k, v in DETERMINISTIC_ENV.items()):
        env = dict(os.environ)
        env.update(DETERMINISTIC_ENV)
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def require(**versions):
    """Asserts the version of each already-imported module (a local suffix such as +cu128 is ignored)."""
    for name, want in versions.items():
        have = sys.modules[name].__version__
        assert have.split("+")[0] == want, f"need {name}=={want}, got {have}"


def format_json(obj):
    """json.dumps(indent=1) with every innermost list (numbers, strings) on one line."""
    text = json.dumps(obj, indent=1)
    text = re.sub(r"\[[^\[\]{}]*\]",
                  lambda m: re.sub(r"\n\s*", "", re.sub(r",\n\s*", ", ", m.group(0))), text)
    assert json.loads(text) == obj
    return text + "\n"
