"""``tan predict``: folders, lists, bad files, face detection, class mapping, outputs."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tanlib.cli import main
from tanlib.errors import ConfigError
from tanlib.inference import NAMED_ORDERS, class_mapping, collect_inputs, load_model, read_class_map


def _has_cascades() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, "CascadeClassifier")


needs_cascades = pytest.mark.skipif(not _has_cascades(), reason="needs opencv-python-headless<5 (tanlib[detect])")


@pytest.fixture
def messy_folder(tmp_path, manifest_test_paths, write_gradient):
    """3 faces, a non-face image, a corrupt, a truncated and an empty file, a text file."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i, p in enumerate(manifest_test_paths[:3]):
        shutil.copy(p, folder / ("sub" if i == 2 else "") / f"face{i}.jpg")
    write_gradient(folder / "landscape.png")
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG file at all" * 10)
    (folder / "truncated.jpg").write_bytes(Path(manifest_test_paths[3]).read_bytes()[:400])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, ignored inside folders\n")
    return folder


def test_folder_with_bad_files_writes_the_good_ones_and_names_the_bad(exported, messy_folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    code = main(["predict", "--model", str(exported.path), str(messy_folder), "--out", str(out), "--no-progress"])
    assert code == 0
    err = capsys.readouterr().err
    frame = pd.read_csv(out)
    classes = exported.meta["classes"]
    assert list(frame.columns) == ["path", "pred", "pred_name", *[f"prob_{c}" for c in classes], "attention"]
    names = sorted(Path(p).name for p in frame["path"])
    assert names == ["face0.jpg", "face1.jpg", "face2.jpg", "landscape.png"]  # no face check without detection
    assert np.allclose(frame[[f"prob_{c}" for c in classes]].sum(axis=1), 1, atol=1e-5)
    assert list(frame["pred_name"]) == [classes[i] for i in frame["pred"]]
    assert ((frame["attention"] > 0) & (frame["attention"] < 1)).all()
    skipped = pd.read_csv(tmp_path / "results.skipped.csv")
    assert sorted(Path(p).name for p in skipped["path"]) == ["broken.jpg", "empty.png", "truncated.jpg"]
    reasons = dict(zip((Path(p).name for p in skipped["path"]), skipped["reason"]))
    assert reasons["empty.png"].startswith("empty_file") and reasons["broken.jpg"].startswith("not_image")
    assert reasons["truncated.jpg"].startswith("truncated")
    for name in ("broken.jpg", "empty.png", "truncated.jpg"):
        assert f"skipped {messy_folder / name}" in err
    assert "predicted 4 image(s), skipped 3" in err
    # a clean second run removes the stale skipped list
    assert (
        main(
            [
                "predict",
                "--model",
                str(exported.path),
                str(messy_folder / "face0.jpg"),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(pd.read_csv(out)) == 1 and not (tmp_path / "results.skipped.csv").exists()


def test_list_file_json_output_and_embedding(exported, messy_folder, tmp_path, capsys):
    listing = tmp_path / "images.txt"
    listing.write_text(
        f"# faces to score\nin/face0.jpg\n\n{messy_folder / 'sub' / 'face2.jpg'}\nin/missing.jpg\nin/broken.jpg\n"
    )
    out = tmp_path / "out" / "results.json"
    assert (
        main(
            [
                "predict",
                "--model",
                str(exported.path),
                str(listing),
                str(tmp_path / "nowhere.png"),
                "--out",
                str(out),
                "--embedding",
                "--no-progress",
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["n_predicted"] == 2 and doc["n_skipped"] == 3
    assert [Path(r["path"]).name for r in doc["results"]] == ["face0.jpg", "face2.jpg"]
    first = doc["results"][0]
    assert set(first["probabilities"]) == set(exported.meta["classes"])
    assert first["pred_name"] == max(first["probabilities"], key=first["probabilities"].get)
    assert len(first["embedding"]) == exported.meta["config"]["embedding_dim"]
    assert np.linalg.norm(first["embedding"]) == pytest.approx(1, abs=1e-4)
    reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    assert reasons["missing.jpg"] == f"listed in {listing}:5, does not exist"
    assert reasons["nowhere.png"] == "does not exist" and reasons["broken.jpg"].startswith("not_image")
    assert doc["model"]["sha256"] == exported.sha256 and doc["model"]["model_classes"] == exported.meta["classes"]
    assert "skipped" in capsys.readouterr().err


def test_nothing_predicted_exits_with_data_error(exported, tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    code = main(
        [
            "predict",
            "--model",
            str(exported.path),
            str(tmp_path / "bad.jpg"),
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "r.csv"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "no image could be predicted: 2 input(s) skipped" in err and f"skipped {tmp_path / 'bad.jpg'}" in err
    assert len(pd.read_csv(tmp_path / "r.skipped.csv")) == 2


def test_csv_on_stdout_and_python_api(exported, manifest_test_paths, capsys):
    assert main(["predict", "--model", str(exported.path), manifest_test_paths[0], "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("path,pred,pred_name,prob_") and len(lines) == 2
    loaded = load_model(exported.path)
    res = loaded.predict(manifest_test_paths[0])
    assert len(res.frame) == 1 and res.frame["path"][0] == manifest_test_paths[0]
    assert lines[1].split(",")[2] == res.frame["pred_name"][0]
    model, transform, meta = loaded
    probs = model(transform(manifest_test_paths[0])[None]).logits.softmax(1)  # the README's two lines
    np.testing.assert_allclose(
        probs[0].numpy(), res.frame[[f"prob_{c}" for c in meta["classes"]]].to_numpy()[0], atol=1e-6
    )


def test_collect_inputs_orders_and_filters(messy_folder):
    paths, skipped = collect_inputs([messy_folder])
    names = [Path(p).relative_to(messy_folder).as_posix() for p in paths]
    assert names == sorted(names) and "notes.txt" not in names and "sub/face2.jpg" in names
    assert skipped == []
    empty = messy_folder / "empty_dir"
    empty.mkdir()
    _, skipped = collect_inputs([empty])
    assert "folder holds no image files" in skipped[0].reason


# ---------------------------------------------------------------------- class mapping
def test_class_mapping_rafdb_to_ferplus_and_back():
    raf, fer = NAMED_ORDERS["rafdb"], NAMED_ORDERS["ferplus"]
    to_fer = class_mapping(raf, "ferplus")
    assert to_fer.target == fer and to_fer.dropped == [] and to_fer.unreachable == ["contempt"]
    prob = np.random.default_rng(0).dirichlet(np.ones(7), size=5)
    mapped, mass = to_fer.apply(prob)
    for i, name in enumerate(raf):  # same probability, other column; contempt 0
        np.testing.assert_allclose(mapped[:, fer.index(name.lower())], prob[:, i], rtol=1e-6)
    assert (mapped[:, fer.index("contempt")] == 0).all() and np.allclose(mass, 1)

    to_raf = class_mapping(fer, "rafdb")
    assert to_raf.dropped == ["contempt"] and to_raf.unreachable == []
    prob8 = np.random.default_rng(1).dirichlet(np.ones(8), size=5)
    mapped, mass = to_raf.apply(prob8)
    np.testing.assert_allclose(mass, 1 - prob8[:, 7], rtol=1e-6)  # contempt's mass removed
    np.testing.assert_allclose(mapped.sum(1), 1, rtol=1e-6)  # the rest renormalised
    np.testing.assert_allclose(mapped[:, raf.index("Happiness")], prob8[:, 1] / (1 - prob8[:, 7]), rtol=1e-5)


def test_explicit_class_map_merges_renames_and_refuses_unknown_names(tmp_path):
    classes = ["Surprise", "Fear", "Happiness", "Neutral"]
    m = class_mapping(classes, class_map={"Surprise": "aroused", "Fear": "aroused", "neutral": None})
    assert m.target == ["aroused", "Happiness"] and m.dropped == ["Neutral"]
    mapped, _ = m.apply(np.array([[0.1, 0.2, 0.3, 0.4]]))
    np.testing.assert_allclose(mapped, [[0.5, 0.5]], rtol=1e-6)
    with pytest.raises(ConfigError, match="'Anger' is not a class of the model"):
        class_mapping(classes, class_map={"Anger": "x"})
    with pytest.raises(ConfigError, match="not a target class"):
        class_mapping(classes, "rafdb", class_map={"Fear": "scared"})
    with pytest.raises(ConfigError, match="no class of the model"):
        class_mapping(classes, "a,b")
    assert class_mapping(classes, class_map={}).identity
    f = tmp_path / "map.json"
    f.write_text('{"Neutral": null}')
    assert read_class_map(str(f)) == {"Neutral": None} and read_class_map('{"a": "b"}') == {"a": "b"}
    with pytest.raises(ConfigError, match="neither a JSON object nor a JSON file"):
        read_class_map("not json")


def test_cli_classes_ferplus_reorders_columns(exported, manifest_test_paths, tmp_path, capsys):
    out = tmp_path / "fer.csv"
    assert (
        main(
            [
                "predict",
                "--model",
                str(exported.path),
                *manifest_test_paths[:5],
                "--classes",
                "ferplus",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "['contempt'] have no model class" in capsys.readouterr().err
    fer = pd.read_csv(out)
    ref = load_model(exported.path).predict(manifest_test_paths[:5]).frame
    fer_names = NAMED_ORDERS["ferplus"]
    assert [c for c in fer.columns if c.startswith("prob_")] == [f"prob_{c}" for c in fer_names]
    assert (fer["prob_contempt"] == 0).all() and np.allclose(fer["mapped_mass"], 1)
    for c in exported.meta["classes"]:
        np.testing.assert_allclose(fer[f"prob_{c.lower()}"], ref[f"prob_{c}"], atol=1e-6)
    assert list(fer["pred_name"]) == [n.lower() for n in ref["pred_name"]]
    assert list(fer["pred"]) == [fer_names.index(n.lower()) for n in ref["pred_name"]]


# ---------------------------------------------------------------------- face detection
@needs_cascades
def test_detect_faces_crops_faces_and_skips_images_without_one(
    exported, manifest_test_paths, tmp_path, capsys, write_gradient
):
    from tanlib.inference import FaceDetector

    detector = FaceDetector()
    folder = tmp_path / "photos"
    folder.mkdir()
    placed = {}
    for p in manifest_test_paths:  # SynthFER faces pasted into larger photos; keep those the cascade finds
        canvas = Image.new("RGB", (240, 200), (128, 128, 128))
        canvas.paste(Image.open(p).convert("RGB"), (90, 50))
        if detector.crop(canvas) is not None:
            name = f"photo{len(placed)}.png"
            canvas.save(folder / name)
            placed[name] = (90, 50, 190, 150)
        if len(placed) == 3:
            break
    assert len(placed) >= 2, "the Haar cascade found almost no SynthFER face"
    write_gradient(folder / "landscape.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "faces.json"
    assert (
        main(
            [
                "predict",
                "--model",
                str(exported.path),
                str(folder),
                "--detect-faces",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert sorted(Path(r["path"]).name for r in doc["results"]) == sorted(placed)
    for r in doc["results"]:  # the detected box lies on the pasted face
        x0, y0, x1, y1 = placed[Path(r["path"]).name]
        f = r["face"]
        assert x0 - 10 <= f["x"] and f["x"] + f["w"] <= x1 + 10 and y0 - 10 <= f["y"] and f["y"] + f["h"] <= y1 + 10
        assert f["n_faces"] >= 1
    reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    assert reasons["landscape.png"].startswith("no face found (OpenCV")
    assert "haarcascade_frontalface" in reasons["landscape.png"]
    assert reasons["broken.jpg"].split(":")[0] in ("not_image", "truncated")
    assert doc["detector"].startswith("OpenCV")
    err = capsys.readouterr().err
    assert f"skipped {folder / 'landscape.png'}: no face found" in err


def test_detect_faces_without_opencv_is_a_clear_config_error(exported, manifest_test_paths, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cv2", None)
    from tanlib.inference import FaceDetector

    with pytest.raises(ConfigError, match=r"pip install 'tanlib\[detect\]'"):
        FaceDetector()
    code = main(["predict", "--model", str(exported.path), manifest_test_paths[0], "--detect-faces", "--no-progress"])
    assert code == 2 and "needs OpenCV" in capsys.readouterr().err
