"""ONNX export: dynamic batch, metadata in the file, outputs equal to torch's within
1e-4 (absolute) on the same inputs, run by onnxruntime."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from tanlib.inference import export_run, load_model  # noqa: E402

ATOL = 1e-4  # the tolerance stated in docs/inference.md


@pytest.fixture(scope="module")
def onnx_export(inference_run, tmp_path_factory):
    return export_run(inference_run, tmp_path_factory.mktemp("onnx") / "tan-smoke.onnx", format="onnx")


def test_onnx_file_name_hash_and_metadata(onnx_export, exported):
    path = onnx_export.path
    assert path.suffix == ".onnx" and path.name == f"tan-smoke-{onnx_export.sha256[:8]}.onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == onnx_export.sha256
    assert onnx_export.card.is_file() and onnx_export.sha256 in onnx_export.card.read_text()
    _, _, meta = load_model(path)
    assert meta == onnx_export.meta
    assert meta["export"]["format"] == "onnx" and meta["onnx"]["input_shape"][0] == "batch"
    # the same record as the torch export of the same checkpoint, down to the tensors' hash
    for key in (
        "classes",
        "transform",
        "config",
        "dataset",
        "metrics",
        "checkpoint",
        "num_params",
        "state_dict_sha256",
    ):
        assert meta[key] == exported.meta[key], key


def test_onnxruntime_agrees_with_torch(onnx_export, exported, manifest_test_paths):
    """Raw onnxruntime session, dynamic batch sizes 1, 7 and 70, on real test images."""
    model, transform, _ = load_model(exported.path)
    session = ort.InferenceSession(str(onnx_export.path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "image" and inp.shape[1:] == [3, transform.size, transform.size]
    assert not isinstance(inp.shape[0], int)  # symbolic: dynamic batch
    x = torch.stack([transform(p) for p in manifest_test_paths])
    names = [o.name for o in session.get_outputs()]
    assert names == ["logits", "attention", "embedding", "features"]
    for n in (1, 7, len(x)):
        outs = dict(zip(names, session.run(None, {"image": x[:n].numpy()})))
        ref = model(x[:n])
        for name in names:
            np.testing.assert_allclose(outs[name], getattr(ref, name).numpy(), atol=ATOL, rtol=0, err_msg=name)
        prob = torch.softmax(torch.from_numpy(outs["logits"]), 1)
        np.testing.assert_allclose(prob.numpy(), torch.softmax(ref.logits, 1).numpy(), atol=ATOL, rtol=0)
        assert (outs["logits"].argmax(1) == ref.logits.argmax(1).numpy()).all()


def test_predict_with_the_onnx_model(onnx_export, exported, manifest_test_paths):
    a = load_model(onnx_export.path).predict(manifest_test_paths[:10], batch_size=4)
    b = load_model(exported.path).predict(manifest_test_paths[:10], batch_size=4)
    assert list(a.frame["pred_name"]) == list(b.frame["pred_name"])
    cols = [c for c in a.frame.columns if c.startswith("prob_")] + ["attention"]
    np.testing.assert_allclose(a.frame[cols].to_numpy(), b.frame[cols].to_numpy(), atol=ATOL, rtol=0)
