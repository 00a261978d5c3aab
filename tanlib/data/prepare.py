"""Datasets in place before a run: SynthFER generated once, atomically, with its settings
checked; any other dataset must already be where the config says (data/README.md).

One owner for "make SynthFER here": the pipeline (01_data), the sweeps and the engine
(a config whose SynthFER folder is missing) all call ``generate_atomically``, so
concurrent callers never see half a dataset and a folder made with other settings is
refused at the kit's default locations (docs/synthfer.md).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import DataError
from ..paths import project_path
from .synthfer import GENERATOR_VERSION, SETTINGS_FILE, generate_synthfer, synthfer_settings

_SIZE = {k: v for k, v in synthfer_settings().items() if k in ("n_train", "n_test")}

#: Default SynthFER location and size per scale: smoke and calibrated have datasets of their
#: own, quick and paper use the generator's defaults.
SYNTHFER_DEFAULTS = {
    "smoke": {"root": "data/synthfer-smoke", "synth_n_train": 700, "synth_n_test": 210},
    "quick": {"root": "data/synthfer", **{f"synth_{k}": v for k, v in _SIZE.items()}},
    # the verdict's protocol (docs/protocol.md): 9,000 training + 1,000 validation faces, a
    # test split with at least 150 faces of every class (Fear is 2.4 % of RAF-DB's test split)
    # and label noise as SCN corrupts RAF-DB (random flips to another class; the images and
    # the test split are those of 0 % noise at every level)
    "calibrated": {
        "root": "data/synthfer-calibrated",
        "synth_n_train": 10000,
        "synth_n_test": 6300,
        "synth_noise_model": "random",
    },
    "paper": {"root": "data/synthfer", **{f"synth_{k}": v for k, v in _SIZE.items()}},
}


#: The scales whose SynthFER is part of their protocol (docs/protocol.md): a run of such a
#: scale on other data is a variant. The other scales' defaults only say what to generate.
PROTOCOL_SCALES = frozenset({"calibrated"})


def synthfer_departures(settings: dict, scale: str) -> dict:
    """How a SynthFER dataset's generator ``settings`` (its ``synthfer_settings.json``, a
    record's ``data.json``) depart from what ``scale`` fixes, as ``{key: value there}``: for
    a scale of ``PROTOCOL_SCALES``, its ``SYNTHFER_DEFAULTS`` (the sizes and the noise
    model); a run on such data is a variant of the scale's preset, never one of its runs.
    {} for the other scales."""
    if scale not in PROTOCOL_SCALES:
        return {}
    fixed = {k.removeprefix("synth_"): v for k, v in SYNTHFER_DEFAULTS[scale].items() if k != "root"}
    if not settings.get("label_noise"):  # without noise every noise model draws the same data (tested)
        fixed.pop("noise_model", None)
    return {k: settings[k] for k, v in fixed.items() if k in settings and settings[k] != v}


def check_synthfer_settings(root: Path, settings: dict) -> None:
    """Refuse a SynthFER folder generated with other settings (or by an older generator)
    than the ones asked for: its numbers would not be the documented ones."""
    wanted = synthfer_settings(**settings)
    path = root / SETTINGS_FILE
    if not path.is_file():
        raise DataError(
            f"{root} holds a SynthFER dataset made by an older generator (no {SETTINGS_FILE}); "
            f"this kit generates version {GENERATOR_VERSION}. Remove or rename the folder and it is "
            "generated again, or point --root elsewhere"
        )
    try:
        have = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not readable JSON ({exc}); remove the folder {root} to generate it again") from None
    differ = [f"{k}: {have.get(k)!r} there, {v!r} wanted" for k, v in wanted.items() if have.get(k) != v]
    if differ:
        raise DataError(
            f"{root} was generated with other SynthFER settings ({'; '.join(differ)}); remove or "
            "rename the folder and it is generated again, or point --root elsewhere"
        )


def generate_atomically(root: Path, settings: dict, check: bool = True) -> Path:
    """Generate SynthFER into ``root`` through a temporary sibling folder renamed at the
    end, so that concurrent callers never see half a dataset. With ``check`` an existing
    dataset is reused only when it was generated with the same settings; without, it is
    used as it is (a folder the user named)."""
    if (root / "synthfer_meta.csv").is_file():
        if check:
            check_synthfer_settings(root, settings)
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    generate_synthfer(tmp, **settings)
    try:
        tmp.rename(root)
    except OSError:  # another process finished first (or root exists): keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not (root / "synthfer_meta.csv").is_file():
            raise DataError(
                f"{root} exists but holds no SynthFER dataset (no synthfer_meta.csv); remove it or choose another root"
            ) from None
    return root


def ensure_dataset(dataset: str, root: str | os.PathLike, **synthfer) -> Path:
    """The dataset folder, absolute. SynthFER is generated there, with the generator
    settings ``synthfer`` over its defaults (``n_train``, ``n_test``, ``label_noise``,
    ``seed``, ...), when the folder does not hold it yet; any other dataset must already
    be in place (see data/README.md). An existing SynthFER folder at one of the kit's
    default locations (``data/synthfer``, ``data/synthfer-smoke``) must have been
    generated with these settings by this generator version; one the user points to
    elsewhere is used as it is."""
    path = project_path(root)
    if dataset == "synthfer":
        default = path in {project_path(v["root"]) for v in SYNTHFER_DEFAULTS.values()}
        return generate_atomically(path, synthfer, check=default)
    if not path.exists():
        raise DataError(
            f"dataset {dataset!r}: folder {path} does not exist; see data/README.md for how to obtain and place it"
        )
    return path


__all__ = [
    "SYNTHFER_DEFAULTS",
    "check_synthfer_settings",
    "ensure_dataset",
    "generate_atomically",
    "synthfer_departures",
]
