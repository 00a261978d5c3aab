"""``amp="auto"``: bfloat16 on a CPU with native bfloat16, float32 elsewhere; what a run
resolved to is recorded, and it is not a variant of the method."""

import json

import pytest
import torch

from tanlib.config import preset, preset_variant
from tanlib.engine import precision
from tanlib.engine.precision import cpu_bf16_flags, precision_name, resolve_amp


def _cpuinfo(folder, flags):
    folder.mkdir()
    path = folder / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n")
    return str(path)


def test_bf16_flags_are_read_from_cpuinfo(tmp_path):
    assert cpu_bf16_flags(_cpuinfo(tmp_path / "zen4", "avx2 avx512f avx512_bf16")) == ("avx512_bf16",)
    assert cpu_bf16_flags(_cpuinfo(tmp_path / "sapphire", "avx2 avx512f amx_tile amx_bf16")) == ("amx_bf16",)
    assert cpu_bf16_flags(_cpuinfo(tmp_path / "skylake", "avx2 avx512f avx512_vnni")) == ()
    assert cpu_bf16_flags(str(tmp_path / "no-such-file")) == ()


@pytest.mark.parametrize("flags, want", [(("avx512_bf16",), "bf16"), ((), "none")])
def test_auto_is_bf16_only_on_a_cpu_that_has_it(monkeypatch, flags, want):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: flags)
    assert resolve_amp("auto", "cpu") == want
    assert resolve_amp("auto", torch.device("cuda")) == "none"  # a GPU: float32 unless asked
    assert resolve_amp("none", "cpu") == "none" and resolve_amp("bf16", "cuda") == "bf16"
    assert precision_name(resolve_amp("auto", "cpu")) == ("bf16" if flags else "fp32")


def test_quick_preset_is_auto_and_the_format_is_not_a_variant():
    assert preset("tan", "quick").amp == "auto" and preset("tan", "paper").amp == "none"
    assert preset_variant(preset("ce", "quick", amp="none").to_dict()) == ""
    assert preset_variant(preset("ce", "quick", amp="bf16", lr=0.01).to_dict()) == "lr=0.01"


def test_a_run_records_the_format_it_resolved_to(smoke, tmp_path, monkeypatch):
    from tanlib.engine import train

    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("avx512_bf16",))
    out = train(smoke("ce", amp="auto", epochs=1), tmp_path / "run", log=lambda *a: None)
    assert json.loads((out / "config.json").read_text())["amp"] == "auto"  # what was asked
    assert json.loads((out / "env.json").read_text())["amp"] == "bf16"  # what ran
    assert json.loads((out / "metrics.json").read_text())["amp"] == "bf16"
