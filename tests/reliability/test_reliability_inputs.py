"""The bad-input matrix: data, parameters and checkpoints. Each case asserts the exact
error class (through the Python API or the message) and the ``tan`` exit code."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tanlib.cli import main
from tanlib.data import build_manifest
from tanlib.data.rafdb import IMAGE_DIR, LABEL_FILE
from tanlib.errors import CheckpointError, ConfigError, DataError, PipelineError, RunDirError


# ---------------------------------------------------------------------- helpers
def tiny_jpeg(path: Path, seed: int, size: int = 40) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def rafdb_tree(root: Path, extra_lines=(), drop=lambda name, label: False, break_image: str | None = None) -> Path:
    """A RAF-DB basic tree, 3 train + 1 test image per class (28 images), optionally
    with extra label lines, entries dropped, or image train_00002 broken."""
    lines = []
    for split, per in (("train", 3), ("test", 1)):
        k = 0
        for label in range(1, 8):
            for _ in range(per):
                k += 1
                name = f"{split}_{k:05d}.jpg"
                if drop(name, label):
                    continue
                lines.append(f"{name} {label}")
                tiny_jpeg(root / IMAGE_DIR / f"{split}_{k:05d}_aligned.jpg", seed=len(lines))
    (root / LABEL_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / LABEL_FILE).write_text("\n".join(lines + list(extra_lines)) + "\n")
    img = root / IMAGE_DIR / "train_00002_aligned.jpg"
    if break_image == "truncated":
        img.write_bytes(img.read_bytes()[:200])
    elif break_image == "empty":
        img.write_bytes(b"")
    elif break_image == "not_image":
        img.write_text("a text file, not a JPEG\n")
    elif break_image == "missing":
        img.unlink()
    elif break_image == "symlink_out":
        img.unlink()
        img.symlink_to(tiny_jpeg(root.parent / "outside.jpg", seed=99))
    return root


def run_cli(args, capsys):
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def first_line(err: str) -> str:
    return err.strip().splitlines()[0] if err.strip() else ""


# ---------------------------------------------------------------------- data
LABEL = str(LABEL_FILE)
DATA_CASES = [
    # id, what, builder(tmp) -> root, expected text in the message
    ("D1", "dataset root does not exist", lambda t: t / "nowhere", "does not exist or is not a folder"),
    (
        "D2",
        "wrong layout: no EmoLabel/list_patition_label.txt",
        lambda t: (t / "r" / "Image").mkdir(parents=True) or t / "r",
        "[layout] label file missing",
    ),
    ("D3", "truncated/corrupt JPEG", lambda t: rafdb_tree(t / "r", break_image="truncated"), f"{LABEL}:2: [truncated]"),
    ("D4", "zero-byte image", lambda t: rafdb_tree(t / "r", break_image="empty"), f"{LABEL}:2: [empty_file]"),
    ("D5", "a text file named .jpg", lambda t: rafdb_tree(t / "r", break_image="not_image"), f"{LABEL}:2: [not_image]"),
    ("D6", "image listed but missing", lambda t: rafdb_tree(t / "r", break_image="missing"), f"{LABEL}:2: [missing]"),
    (
        "D7",
        "label out of range (8)",
        lambda t: rafdb_tree(t / "r", extra_lines=["train_00099.jpg 8"]),
        f"{LABEL}:29: [label_range]",
    ),
    (
        "D8",
        "unparsable label line",
        lambda t: rafdb_tree(t / "r", extra_lines=["train_00099.jpg five"]),
        f"{LABEL}:29: [parse]",
    ),
    (
        "D9",
        "duplicate label line",
        lambda t: rafdb_tree(t / "r", extra_lines=["train_00001.jpg 1"]),
        f"{LABEL}:29: [duplicate] train_00001.jpg is listed again (first on line 1)",
    ),
    (
        "D10",
        "a class with no image in the test split",
        lambda t: rafdb_tree(t / "r", drop=lambda n, lab: n.startswith("test_") and lab == 2),
        "[empty_class] class 'Fear' has no usable image in split 'test'",
    ),
    (
        "D11",
        "label-file path escaping the root (../x.jpg)",
        lambda t: rafdb_tree(t / "r", extra_lines=["../../etc/passwd 1"]),
        f"{LABEL}:29: [escapes_root]",
    ),
    (
        "D12",
        "image symlinked to a file outside the root",
        lambda t: rafdb_tree(t / "r", break_image="symlink_out"),
        f"{LABEL}:2: [escapes_root]",
    ),
]


@pytest.mark.parametrize("cid, what, build, text", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data(cid, what, build, text, case, tmp_path, capsys):
    case(
        cid,
        "bad input: data",
        f"RAF-DB layout, {what}; `tan data check` and build_manifest",
        "DataError, exit 3, message names file:line and problem kind",
    )
    root = build(tmp_path)
    with pytest.raises(DataError) as info:
        build_manifest("rafdb", root)
    assert text in str(info.value)
    rc, err = run_cli(["data", "check", "--dataset", "rafdb", "--root", root], capsys)
    assert rc == DataError.exit_code == 3
    shown = [ln for ln in str(info.value).splitlines() if text in ln]
    case.observed(f"exit {rc}; {shown[0].strip() if shown else first_line(str(info.value))}")


def test_bad_data_refused_by_tan_train_before_any_training(case, tmp_path, capsys):
    case(
        "D13",
        "bad input: data",
        "`tan train` on a RAF-DB tree with a zero-byte image",
        "DataError, exit 3, naming the file and line; no checkpoint written",
    )
    root = rafdb_tree(tmp_path / "r", break_image="empty")
    out = tmp_path / "run"
    rc, err = run_cli(
        ["train", "--preset", "smoke", "--dataset", "rafdb", "--root", root, "--out", out, "--set", "progress=false"],
        capsys,
    )
    assert rc == 3 and f"{LABEL}:2: [empty_file]" in err
    assert not (out / "last.pt").exists()
    case.observed(f"exit {rc}; " + next(ln.strip() for ln in err.splitlines() if "[empty_file]" in ln))


def test_csv_with_wrong_columns(case, tmp_path, capsys):
    case(
        "D14",
        "bad input: data",
        "FERPlus fer2013new.csv with a wrong header (a column renamed)",
        "DataError, exit 3, message names file:1, the header found and the one expected",
    )
    root = tmp_path / "ferplus"
    root.mkdir()
    (root / "fer2013new.csv").write_text(
        "Usage,Image name,neutral,happy,surprise,sadness,anger,disgust,fear,"
        "contempt,unknown,NF\nTraining,fer0000000.png,4,0,0,0,0,0,0,0,0,0\n"
    )
    with pytest.raises(DataError, match=r"fer2013new.csv:1: header is .*expected"):
        build_manifest("ferplus", root)
    rc, err = run_cli(["data", "check", "--dataset", "ferplus", "--root", root], capsys)
    assert rc == 3 and "fer2013new.csv:1: header is" in err
    case.observed(f"exit {rc}; {first_line(err)[:200]}")


def test_manifest_with_wrong_columns(case, finished_run, tmp_path, capsys):
    case(
        "D15",
        "bad input: data",
        "a run folder whose manifest.csv lacks the 'label' column; `tan evaluate`",
        "DataError, exit 3, naming manifest.csv:1 and the missing column",
    )
    src, _ = finished_run
    run = tmp_path / "run"
    shutil.copytree(src, run, ignore=shutil.ignore_patterns("last.pt"))
    text = (run / "manifest.csv").read_text().splitlines()
    header = text[0].split(",")
    col = header.index("label")
    (run / "manifest.csv").write_text(
        "\n".join(",".join(v for i, v in enumerate(r.split(",")) if i != col) for r in text) + "\n"
    )
    rc, err = run_cli(["evaluate", run], capsys)
    assert rc == 3 and "manifest.csv:1: manifest lacks columns ['label']" in err
    case.observed(f"exit {rc}; {first_line(err)[-120:]}")


# ---------------------------------------------------------------------- parameters
PARAM_CASES = [
    ("P1", "unknown key", ["--set", "lrr=0.1"], "unknown config key(s) ['lrr']"),
    ("P2", "wrong type (string for an int)", ["--set", "epochs=two"], "epochs='two' has type str; expected int"),
    ("P3", "wrong type (bool for a float)", ["--set", "lr=true"], "lr=True has type bool; expected float"),
    ("P4", "lr = 0", ["--set", "lr=0"], "lr=0.0 is out of range; allowed: > 0"),
    ("P5", "lr < 0", ["--set", "lr=-0.1"], "lr=-0.1 is out of range"),
    ("P6", "quantile threshold = 1", ["--set", "threshold=1"], "threshold=1.0 is out of range; allowed: [0, 1)"),
    ("P7", "quantile threshold < 0", ["--set", "threshold=-0.2"], "threshold=-0.2 is out of range"),
    ("P8", "batch of 2 cannot form a triplet", ["--set", "batch_size=2"], "batch_size=2 cannot form a triplet"),
    (
        "P9",
        "image size too small for ResNet (16 px)",
        ["--set", "image_size=16"],
        "image_size=16 is out of range; allowed: >= 32",
    ),
    ("P10", "non-finite value", ["--set", "lr=NaN"], "lr=nan is out of range"),
    ("P11", "preset that does not exist", ["--preset", "huge"], "scale='huge' is not allowed"),
    ("P12", "method that does not exist", ["--method", "tan2"], "method='tan2' is not allowed"),
    ("P13", "--set without '='", ["--set", "epochs"], "--set 'epochs': expected key=value"),
    ("P14", "config file that is not JSON", ["--config", "{bad}"], "is not valid JSON"),
    ("P15", "config file that does not exist", ["--config", "{missing}"], "does not exist"),
]


@pytest.mark.parametrize("cid, what, extra, text", PARAM_CASES, ids=[c[0] for c in PARAM_CASES])
def test_bad_parameters(cid, what, extra, text, case, synth_root, tmp_path, capsys):
    case(
        cid,
        "bad input: parameters",
        f"`tan train` with {what}: `{' '.join(extra)}`",
        "ConfigError, exit 2, naming the key/value and what is allowed; run folder not created",
    )
    (tmp_path / "bad.json").write_text('{"lr": 0.1,')
    extra = [
        e.replace("{bad}", str(tmp_path / "bad.json")).replace("{missing}", str(tmp_path / "none.json")) for e in extra
    ]
    out = tmp_path / "run"
    rc, err = run_cli(["train", "--preset", "smoke", "--root", synth_root, "--out", out, *extra], capsys)
    assert rc == ConfigError.exit_code == 2, err
    assert text in err
    assert not out.exists()
    case.observed(f"exit {rc}; {first_line(err)[:200]}")


def test_cuda_device_without_cuda_is_a_config_error(case, small, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available on this machine")
    case(
        "P16",
        "bad input: parameters",
        "`tan train --set device=cuda` on a machine without CUDA",
        "ConfigError, exit 2, naming device and the alternatives",
    )
    rc, err = run_cli(
        ["train", "--preset", "smoke", "--root", small().root, "--out", tmp_path / "run", "--set", "device=cuda"],
        capsys,
    )
    assert rc == 2 and "device='cuda' but CUDA is not available" in err
    case.observed(f"exit {rc}; {first_line(err)}")


def test_unknown_notebook_parameter(case, tmp_path, capsys):
    case(
        "P17",
        "bad input: parameters",
        "`tan run -p bogus=1` (a name no notebook declares)",
        "PipelineError, exit 7, listing the known parameters; nothing created",
    )
    rc, err = run_cli(
        ["run", "--preset", "smoke", "--out", tmp_path / "runs", "--run-id", "x", "-p", "bogus=1"], capsys
    )
    assert rc == PipelineError.exit_code == 7 and "unknown parameter 'bogus'" in err
    assert not (tmp_path / "runs").exists()
    case.observed(f"exit {rc}; {first_line(err)[:160]}")


def test_bad_sweep_grid(case, tmp_path, capsys):
    case(
        "P18",
        "bad input: parameters",
        "`tan sweep` with a grid whose parameters hold an unknown key",
        "ConfigError, exit 2, naming the key; nothing trained",
    )
    grid = tmp_path / "g.yaml"
    grid.write_text("methods: [ce]\npreset: smoke\nparameters: {epochz: [1]}\n")
    rc, err = run_cli(["sweep", "--grid", grid, "--out", tmp_path / "sw"], capsys)
    assert rc == 2 and "epochz" in err
    case.observed(f"exit {rc}; {first_line(err)[:160]}")


# ---------------------------------------------------------------------- checkpoints
@pytest.fixture
def run_copy(finished_run, tmp_path):
    src, _ = finished_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    return run


class _Payload:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _with_classes(state, n):
    import tanlib.models.tan_net as tn

    state = dict(state)
    model = tn.TANNet(num_classes=n, embedding_dim=128, attention=False)
    state["model"] = model.state_dict()
    state["num_classes"] = n
    state["classes"] = [f"c{i}" for i in range(n)]
    return state


CKPT_CASES = [
    (
        "C1",
        "best.pt whose weights are a ResNet-34 while its config says ResNet-18",
        "arch",
        "does not match its config's architecture",
    ),
    ("C2", "best.pt of another class count (8 classes) in a 7-class run", "classes", "classes"),
    (
        "C3",
        "best.pt truncated to half its bytes",
        "truncated",
        "not a readable torch checkpoint (truncated or corrupt?)",
    ),
    ("C4", "best.pt that is a pickle needing code execution", "pickle", "refused by torch.load(weights_only=True)"),
    ("C5", "best.pt that is a plain state dict (not a tanlib checkpoint)", "plain", "is not a tanlib checkpoint"),
    ("C6", "best.pt missing", "missing", "does not exist"),
]


@pytest.mark.parametrize("cid, what, how, text", CKPT_CASES, ids=[c[0] for c in CKPT_CASES])
def test_bad_checkpoint_for_evaluate(cid, what, how, text, case, run_copy, tmp_path, capsys):
    import tanlib.models.tan_net as tn

    case(
        cid,
        "bad input: checkpoint",
        f"`tan evaluate` of a run whose {what}",
        "CheckpointError, exit 4, naming the file; no code executed; metrics.json untouched",
    )
    best = run_copy / "best.pt"
    state = torch.load(best, weights_only=True)
    marker = tmp_path / "code-ran"
    if how == "arch":
        state["model"] = tn.TANNet(num_classes=7, backbone="resnet34", embedding_dim=128, attention=False).state_dict()
        torch.save(state, best)
    elif how == "classes":
        torch.save(_with_classes(state, 8), best)
    elif how == "truncated":
        best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    elif how == "pickle":
        torch.save({"model": _Payload(marker), "config": state["config"]}, best)
    elif how == "plain":
        torch.save(state["model"], best)
    elif how == "missing":
        best.unlink()
    before = (run_copy / "metrics.json").read_bytes()
    rc, err = run_cli(["evaluate", run_copy], capsys)
    assert rc == CheckpointError.exit_code == 4, err
    assert text in err and "best.pt" in err
    assert not marker.exists(), "unpickling ran code"
    assert (run_copy / "metrics.json").read_bytes() == before
    case.observed(f"exit {rc}; {first_line(err)[:220]}")


def test_truncated_last_pt_refused_by_resume(case, run_copy, tmp_path, capsys):
    case(
        "C7",
        "bad input: checkpoint",
        "`tan train --resume` when last.pt is truncated",
        "CheckpointError, exit 4, naming last.pt; the truncated file is left as it was",
    )
    last = run_copy / "last.pt"
    last.write_bytes(last.read_bytes()[:4096])
    data = last.read_bytes()
    rc, err = run_cli(["train", "--config", run_copy / "config.json", "--out", run_copy, "--resume"], capsys)
    assert rc == 4 and "last.pt is not a readable torch checkpoint" in err
    assert last.read_bytes() == data
    case.observed(f"exit {rc}; {first_line(err)[:200]}")


def test_resume_with_another_architecture_is_refused(case, run_copy, capsys):
    case(
        "C8",
        "bad input: checkpoint",
        "`tan train --resume --set backbone=resnet34` on a ResNet-18 run",
        "refused before loading weights: exit 5 (RunDirError), naming the differing key; run untouched",
    )
    before = {p.name: p.stat().st_mtime_ns for p in run_copy.iterdir()}
    rc, err = run_cli(
        ["train", "--config", run_copy / "config.json", "--out", run_copy, "--resume", "--set", "backbone=resnet34"],
        capsys,
    )
    assert rc == RunDirError.exit_code and "backbone: checkpoint 'resnet18' vs now 'resnet34'" in err
    assert {p.name: p.stat().st_mtime_ns for p in run_copy.iterdir()} == before
    case.observed(f"exit {rc}; {first_line(err)[:200]}")


@pytest.mark.parametrize(
    "cid, what, how, text",
    [
        (
            "C9",
            "a backbone file of another architecture (ResNet-50 state dict: keys match, shapes do not)",
            "resnet50",
            "under 90 % of the backbone would be initialised",
        ),
        (
            "C10",
            "a backbone file with renamed keys (under 90 % match)",
            "renamed",
            "under 90 % of the backbone would be initialised",
        ),
        ("C11", "a backbone file that is a pickle needing code execution", "pickle", "weights_only=True"),
        ("C12", "a backbone file truncated", "truncated", "not a readable torch checkpoint"),
    ],
    ids=["C9", "C10", "C11", "C12"],
)
def test_bad_backbone_file(cid, what, how, text, case, small, tmp_path, capsys):
    import torchvision

    case(
        cid,
        "bad input: checkpoint",
        f"`tan train --set pretrained=FILE` with {what}",
        "CheckpointError, exit 4, with loaded/total counts or the refusal reason; no code executed",
    )
    path = tmp_path / "weights.pth"
    marker = tmp_path / "code-ran"
    if how == "resnet50":
        torch.save(torchvision.models.resnet50().state_dict(), path)
    elif how == "renamed":
        sd = torchvision.models.resnet18().state_dict()
        torch.save({("trunk." + k if i % 3 else k): v for i, (k, v) in enumerate(sd.items())}, path)
    elif how == "pickle":
        with open(path, "wb") as f:
            pickle.dump({"state_dict": _Payload(marker)}, f)
    elif how == "truncated":
        torch.save(torchvision.models.resnet18().state_dict(), path)
        path.write_bytes(path.read_bytes()[:5000])
    cfg = tmp_path / "config.json"
    small("ce", epochs=1).save(cfg)
    rc, err = run_cli(["train", "--config", cfg, "--out", tmp_path / "run", "--set", f"pretrained={path}"], capsys)
    assert rc == CheckpointError.exit_code and text in err and str(path) in err
    assert not marker.exists()
    assert not (tmp_path / "run" / "last.pt").exists()
    case.observed(f"exit {rc}; {first_line(err)[:220]}")
