"""The numeric format a run trains and evaluates in: one rule for ``amp="auto"``.

``amp`` is ``"none"`` (float32), ``"bf16"`` (``torch.autocast`` to bfloat16) or ``"auto"``,
the CPU presets' default: bfloat16 on a CPU that computes it natively (the
``avx512_bf16`` or ``amx_bf16`` instruction-set flags), float32 everywhere else, a GPU
included (set ``amp=bf16`` there yourself). Measured on this project's 2-core AMD EPYC
(``bench/bench_cpu_train.py``, docs/benchmarks.md section 8): the kit's training step
is about 1.7x faster in bfloat16, with no accuracy difference detectable over three seeds. What a run resolved to is
written in ``env.json`` and ``metrics.json`` (``amp``), and the verdict never pairs a
float32 run with a bfloat16 one.
"""

from __future__ import annotations

import functools
from pathlib import Path

#: /proc/cpuinfo flags of a CPU with native bfloat16 arithmetic (AVX-512 BF16, AMX)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The native-bfloat16 flags this CPU reports (empty where none, or where there is no
    /proc/cpuinfo to read: float32 is the safe answer)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return ()
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[-1].split())
    return tuple(f for f in BF16_CPU_FLAGS if f in flags)


def resolve_amp(amp: str, device) -> str:
    """The format a run uses on ``device`` (a ``torch.device`` or its name): ``"bf16"`` or
    ``"none"`` (float32)."""
    import torch  # here, not at the top: the reports name formats (precision_name) without torch

    if amp != "auto":
        return amp
    return "bf16" if torch.device(device).type == "cpu" and cpu_bf16_flags() else "none"


def precision_name(amp) -> str:
    """How pages name a resolved ``amp`` (``metrics.json``; missing in records from before
    the key: float32): ``"bf16"`` or ``"fp32"``."""
    return "bf16" if amp == "bf16" else "fp32"
