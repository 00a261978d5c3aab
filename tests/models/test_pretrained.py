"""Backbone weight loading: both MS-Celeb layouts, the 90 % rule, safe loading."""

import pickle

import pytest
import torch
import torchvision

from tanlib.config import preset
from tanlib.errors import CheckpointError
from tanlib.models import build_model


def _reference_resnet18():
    torch.manual_seed(1)
    net = torchvision.models.resnet18(num_classes=1000)
    return net


def _assert_backbone_equal(model, ref):
    ref_state = ref.state_dict()
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, ref_state[k]), k


def test_ran_scn_layout_module_prefix(tmp_path, capsys):
    ref = _reference_resnet18()
    path = tmp_path / "ijba_res18_naive.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}, "epoch": 3}, path)
    model = build_model(preset("tan", pretrained=str(path)), num_classes=7)
    _assert_backbone_equal(model, ref)
    r = model.load_report
    assert r.loaded == r.total and r.missing == 0 and r.unexpected == 0
    assert "loaded 120/120" in capsys.readouterr().out


def test_plain_torchvision_layout(tmp_path):
    ref = _reference_resnet18()
    path = tmp_path / "resnet18_msceleb.pth"
    torch.save(ref.state_dict(), path)
    model = build_model(preset("tan", pretrained=str(path)), num_classes=7, verbose=False)
    _assert_backbone_equal(model, ref)


def test_mismatched_checkpoint_is_refused_with_counts(tmp_path):
    ref = torchvision.models.resnet50()
    path = tmp_path / "r50.pth"
    torch.save(ref.state_dict(), path)
    with pytest.raises(CheckpointError, match=r"refusing .*loaded \d+/120 .*missing \d+, unexpected \d+"):
        build_model(preset("tan", pretrained=str(path)), num_classes=7)


def test_partially_renamed_checkpoint_under_90_percent(tmp_path):
    state = _reference_resnet18().state_dict()
    renamed = {(f"stem.{k}" if k.startswith("layer") else k): v for k, v in state.items()}
    path = tmp_path / "renamed.pth"
    torch.save(renamed, path)
    with pytest.raises(CheckpointError, match="under 90 %"):
        build_model(preset("tan", pretrained=str(path)), num_classes=7)


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickle_needing_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": _Evil()}, f)
    with pytest.raises(CheckpointError, match="weights_only"):
        build_model(preset("tan", pretrained=str(path)), num_classes=7)


def test_truncated_and_missing_files(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save(_reference_resnet18().state_dict(), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cut.pth"):
        build_model(preset("tan", pretrained=str(path)), num_classes=7)
    with pytest.raises(CheckpointError, match="does not exist"):
        build_model(preset("tan", pretrained=str(tmp_path / "nope.pth")), num_classes=7)


def test_imagenet_offline_fails_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(CheckpointError, match=r"Offline, download https://\S+resnet18\S+ .* place it at"):
        build_model(preset("tan", pretrained="imagenet"), num_classes=7)
