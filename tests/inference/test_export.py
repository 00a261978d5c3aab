"""``tan export`` and ``load_model``: the weights file, its metadata and hashes, the model
card, and the key property: the export predicts what ``tan evaluate`` predicts."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from tanlib.cli import main
from tanlib.errors import CheckpointError, RunDirError
from tanlib.inference import InferenceTransform, export_run, load_model, read_weights


def test_weights_file_is_tensors_and_json_only(exported):
    obj = torch.load(exported.path, map_location="cpu", weights_only=True)
    assert set(obj) == {"format", "format_version", "meta", "state_dict"}
    assert obj["format"] == "tanlib-weights" and obj["format_version"] == 1
    assert obj["state_dict"] and all(isinstance(v, torch.Tensor) for v in obj["state_dict"].values())
    assert json.loads(json.dumps(obj["meta"])) == obj["meta"]  # JSON types only
    assert obj["meta"] == exported.meta


def test_file_name_carries_the_sha256(exported):
    digest = hashlib.sha256(exported.path.read_bytes()).hexdigest()
    assert digest == exported.sha256
    assert exported.path.name == f"tan-smoke-{digest[:8]}.pt"
    assert exported.card == exported.path.with_suffix(".md")


def test_metadata_round_trips_and_describes_the_run(exported, inference_run):
    model, transform, meta = load_model(exported.path)
    assert meta == exported.meta
    config = json.loads((inference_run / "config.json").read_text())
    metrics = json.loads((inference_run / "metrics.json").read_text())
    manifest = json.loads((inference_run / "manifest.json").read_text())
    best = metrics["results"]["best_val"]
    assert meta["classes"] == manifest["classes"] and meta["num_classes"] == len(manifest["classes"])
    assert meta["config"] == config
    assert meta["num_params"] == sum(p.numel() for p in model.parameters())
    assert meta["checkpoint"]["which"] == "best" and meta["checkpoint"]["epoch"] == best["epoch"]
    assert "best validation accuracy" in meta["checkpoint"]["selection"]
    for key in ("accuracy", "mean_class_accuracy", "macro_f1", "n"):
        assert meta["metrics"][key] == best[key]
    assert meta["metrics"]["test_selected"] == metrics["test_selected"]
    assert meta["dataset"]["name"] == "synthfer" and meta["dataset"]["protocol"] == "default"
    assert meta["dataset"]["splits"]["test"] == best["n"]
    assert meta["dataset"]["synthfer_settings"]["n_test"] == 70
    t = meta["transform"]
    assert t["size"] == [config["image_size"]] * 2 and t["color_order"] == "RGB"
    assert t["mean"] == pytest.approx([0.485, 0.456, 0.406]) and t["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert transform.size == config["image_size"]
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_export_is_deterministic(exported, inference_run, tmp_path):
    again = export_run(inference_run, tmp_path / "tan-smoke.pt")
    assert again.path.name == exported.path.name
    assert again.path.read_bytes() == exported.path.read_bytes()


def test_predictions_equal_tan_evaluate(exported, inference_run, manifest_test_paths, tmp_path):
    """Same files, same classes, same probabilities as `tan evaluate` (best checkpoint)."""
    run = shutil.copytree(inference_run, tmp_path / "run", ignore=shutil.ignore_patterns("last.pt", "tensorboard"))
    assert main(["evaluate", str(run)]) == 0  # on a copy: the run is shared by the session
    reference = pd.read_csv(run / "predictions.csv")
    with np.load(run / "embeddings.npz") as z:
        ref_logits, ref_embedding = z["logits"], z["embedding"]
    assert list(reference["path"]) == manifest_test_paths
    res = load_model(exported.path).predict(manifest_test_paths, batch_size=32, embedding=True)
    assert not res.skipped and list(res.frame["path"]) == manifest_test_paths
    np.testing.assert_array_equal(res.frame["pred"].to_numpy(), reference["pred"].to_numpy())
    assert list(res.frame["pred_name"]) == list(reference["pred_name"])
    prob = res.frame[[f"prob_{c}" for c in res.classes]].to_numpy()
    ref_prob = torch.softmax(torch.from_numpy(ref_logits), 1).numpy()
    np.testing.assert_allclose(prob, ref_prob, atol=1e-5)
    np.testing.assert_allclose(res.frame["attention"].to_numpy(), reference["attention"].to_numpy(), atol=1e-5)
    emb = res.frame[[c for c in res.frame.columns if c.startswith("emb_")]].to_numpy()
    np.testing.assert_allclose(emb, ref_embedding, atol=1e-5)


def test_transform_reproduces_evaluation_pixels(exported, manifest_test_paths, tmp_path):
    """The exported transform decodes exactly like `load_images`: JPEG draft, grayscale,
    alpha, non-square and already-sized images."""
    from PIL import Image

    from tanlib.data import load_images

    _, transform, _ = load_model(exported.path)
    rng = np.random.default_rng(0)
    extra = []
    for name, mode, size in (
        ("big.jpg", "RGB", (410, 380)),
        ("gray.jpg", "L", (130, 90)),
        ("alpha.png", "RGBA", (70, 120)),
        ("exact.png", "RGB", (32, 32)),
    ):
        shape = (size[1], size[0]) + ((len(mode),) if mode != "L" else ())
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(tmp_path / name)
        extra.append(str(tmp_path / name))
    paths = manifest_test_paths[:20] + extra
    reference = load_images(pd.DataFrame({"path": paths}), transform.size)
    mine = torch.stack([transform.to_uint8(p) for p in paths])
    assert torch.equal(mine, reference)
    # and the normalisation is evaluation's BatchAugment(train=False)
    from tanlib.data import BatchAugment

    assert torch.equal(transform.normalise(mine), BatchAugment(flip=False, erasing_p=0.0)(reference, train=False))
    # arrays and PIL images give the model input of the file they came from (PNG: no JPEG draft)
    img = Image.open(extra[3]).convert("RGB")
    assert torch.equal(transform(np.asarray(img)), transform(extra[3]))
    assert torch.equal(transform(img), transform(extra[3]))


def test_transform_metadata_round_trip():
    t = InferenceTransform(64)
    u = InferenceTransform.from_meta(json.loads(json.dumps(t.to_meta())))
    fields = ("size", "mean", "std", "reducing_gap", "jpeg_draft")
    assert [getattr(u, f) for f in fields] == [getattr(t, f) for f in fields]
    with pytest.raises(CheckpointError, match="not known to this version"):
        InferenceTransform.from_meta({**t.to_meta(), "resize": "opencv-area"})


def test_model_card(exported):
    card = exported.card.read_text()
    meta = exported.meta
    assert card.startswith("# Model card: tan-smoke")
    assert exported.sha256 in card and exported.path.name in card
    assert "not a facial expression model of real faces" in card
    assert f"{100 * meta['metrics']['accuracy']:.2f} %" in card
    assert meta["checkpoint"]["selection"] in card and "test-selected" in card
    for name in meta["classes"]:
        assert f"| {name} |" in card
    assert meta["transform"]["rule"] in card


def test_cli_export_last_checkpoint_into_folder(inference_run, tmp_path, capsys):
    out = tmp_path / "models"
    out.mkdir()
    assert main(["export", str(inference_run), "--out", str(out), "--checkpoint", "last"]) == 0
    printed = capsys.readouterr().out
    (path,) = out.glob("*.pt")
    assert path.name.startswith("tan-synthfer-last-") and str(path) in printed and "model card" in printed
    meta = load_model(path).meta
    metrics = json.loads((inference_run / "metrics.json").read_text())
    assert meta["checkpoint"]["which"] == "last" and meta["checkpoint"]["epoch"] == metrics["last_epoch"]
    assert meta["metrics"]["accuracy"] == metrics["results"]["last"]["accuracy"]
    assert "last epoch" in meta["checkpoint"]["selection"]


def test_modified_files_are_refused(exported, tmp_path):
    # a byte changed: the hash in the name no longer matches
    data = bytearray(exported.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / exported.path.name
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{bad.name}"):
        load_model(bad)
    # renamed (no hash in the name) and a tensor changed: the tensors' hash catches it
    obj = torch.load(exported.path, map_location="cpu", weights_only=True)
    name = next(k for k, v in obj["state_dict"].items() if v.is_floating_point())
    obj["state_dict"][name] = obj["state_dict"][name] + 1e-3
    renamed = tmp_path / "renamed.pt"
    torch.save(obj, renamed)
    with pytest.raises(CheckpointError, match="weights were modified"):
        read_weights(renamed)


def test_wrong_files_are_refused_with_a_message(inference_run, tmp_path):
    with pytest.raises(CheckpointError, match="training checkpoint.*tan export"):
        load_model(inference_run / "best.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a tanlib weights file"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(RunDirError, match="not a run directory"):
        export_run(tmp_path, tmp_path / "x.pt")


def test_export_needs_the_checkpoints_test_results(inference_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(inference_run, run, ignore=shutil.ignore_patterns("last.pt", "tensorboard"))
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["results"]["best_val"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunDirError, match="tan evaluate"):
        export_run(run, tmp_path / "x.pt")
    assert not list(tmp_path.glob("x*"))


def test_tta_flip_equals_evaluation_tta(exported, manifest_test_paths):
    from tanlib.data import load_images
    from tanlib.engine import predict

    loaded = load_model(exported.path)
    res = loaded.predict(manifest_test_paths[:12], tta_flip=True)
    ref = predict(
        loaded.model,
        load_images(pd.DataFrame({"path": manifest_test_paths[:12]}), loaded.transform.size),
        tta_flip=True,
    )
    np.testing.assert_allclose(res.frame[[f"prob_{c}" for c in res.classes]].to_numpy(), ref["prob"], atol=1e-5)
    np.testing.assert_array_equal(res.frame["pred"].to_numpy(), ref["pred"])
