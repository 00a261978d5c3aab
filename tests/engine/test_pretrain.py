"""Identity pretraining on SynthFace (docs/pretraining.md): the identities' disjointness
from SynthFER, the toy-scale loop and its provenance, the weights file's round trip through
the MS-Celeb loader, the losses against their formulas, ``pretrained=synthface`` and
``tan run --set``."""

import hashlib
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from tanlib.cli import main
from tanlib.config import preset
from tanlib.data.synthdraw import STREAMS, identity_params
from tanlib.data.synthface import plan_synthface, render_synthface, synthface_identity
from tanlib.data.synthfer import plan_synthfer
from tanlib.engine.pretrain import (
    MADE_BY,
    IdentityHead,
    PretrainConfig,
    check_default_synthface,
    identity_accuracy,
    sidecar_path,
)
from tanlib.errors import CheckpointError, ConfigError, PipelineError
from tanlib.models import build_model
from tanlib.models.pretrained import read_weights, weights_sha256

TOY = [
    "identities=6",
    "images_per_identity=3",
    "heldout_per_identity=1",
    "image_size=32",
    "render_size=32",
    "epochs=1",
    "batch_size=6",
    "embedding_dim=16",
    "render_workers=1",
    "progress=false",
    "num_threads=1",
]


def _vector(idp: dict) -> bytes:
    """Every number of an identity's parameters, flattened (the face it draws)."""
    parts = []
    for key in sorted(idp):
        v = idp[key]
        parts.append(np.asarray(list(v.values()) if isinstance(v, dict) else v, dtype=np.float64).ravel())
    return np.concatenate(parts).tobytes()


def test_synthface_identities_are_disjoint_from_every_synthfer_dataset():
    # the argument (tanlib/data/synthface.py): SynthFace draws from stream words no SynthFER dataset uses
    synthfer_words = set(STREAMS["train"]) | set(STREAMS["test"]) | {0, 4}  # + the plan's and annotators' keys
    assert not set(STREAMS["synthface"]) & synthfer_words
    assert STREAMS["train"][2] == STREAMS["test"][2] == 7 != STREAMS["synthface"][2]
    # its consequence: no SynthFace identity (default count and seed) is a SynthFER identity of a
    # default-size dataset (2,500 + 700 images, 8 per identity) for any seed the kit uses (0-9)
    plan = plan_synthfer(2500, 700, 0.0, 0, 8)
    n_ids = int(plan["identity"].max()) + 1
    assert n_ids == 401 and sorted(plan["identity"].unique()) == list(range(n_ids))
    synthfer = {_vector(identity_params(seed, i)) for seed in range(10) for i in range(n_ids)}
    assert len(synthfer) == 10 * n_ids  # the vectors tell identities apart
    synthface = {_vector(synthface_identity(0, j)) for j in range(PretrainConfig().identities)}
    assert len(synthface) == PretrainConfig().identities
    assert not synthface & synthfer
    # the stream is what separates them: the same seed and index on stream 7 is the SynthFER face
    assert _vector(identity_params(0, 5, stream=17)) == _vector(synthface_identity(0, 5))
    assert _vector(identity_params(0, 5)) != _vector(synthface_identity(0, 5))
    with pytest.raises(ConfigError, match=r"seed=4294967296 must be in \[0, 2\*\*32\)"):
        plan_synthface(4, 3, 1, seed=2**32)


def test_render_is_deterministic_and_independent_of_workers():
    plan = plan_synthface(4, 40, 5, seed=1)
    assert (plan.groupby("identity")["split"].apply(lambda s: (s == "heldout").sum()) == 5).all()
    assert set(plan["label"]) == set(range(7))  # expressions vary within identities
    one, meta = render_synthface(plan.iloc[:70], seed=1, size=32, render_size=32, workers=1)
    two, _ = render_synthface(plan.iloc[:70], seed=1, size=32, render_size=32, workers=2)
    assert one.dtype == torch.uint8 and one.shape == (70, 3, 32, 32) and torch.equal(one, two)
    assert {"occluder", "pose_bin", "intensity"} <= set(meta.columns)
    # backgrounds are drawn per image, not per identity: the corner colour of one person varies
    corners = one[:40, :, 0, 0].float()
    assert corners.std(0).mean() > 20


@pytest.mark.parametrize("loss", ["cosface", "arcface"])
def test_margin_losses_match_their_formulas(loss):
    torch.manual_seed(0)
    head = IdentityHead(
        loss, num_classes=5, embedding_dim=8, margin=PretrainConfig(loss=loss).resolved_margin, scale=16.0
    )
    emb, y = torch.randn(12, 8), torch.randint(0, 5, (12,))
    cos = F.normalize(emb, dim=1) @ F.normalize(head.criterion.W, dim=0)
    onehot = F.one_hot(y, 5).bool()
    if loss == "cosface":  # Wang et al. 2018: s * (cos - m) on the target
        target = cos - 0.35
    else:  # Deng et al. 2019: s * cos(theta + m) on the target, m = 0.5 rad
        theta = torch.acos(cos.clamp(-1, 1))
        target = torch.where(
            theta + math.radians(28.6) <= math.pi,
            torch.cos(theta + math.radians(28.6)),
            cos - math.radians(28.6) * math.sin(math.radians(28.6)),
        )
    naive = F.cross_entropy(16.0 * torch.where(onehot, target, cos), y)
    assert torch.allclose(head(emb, y), naive, atol=1e-5)
    assert torch.equal(head.logits(emb).argmax(1), cos.argmax(1))  # prediction: the margin-free cosine


@pytest.mark.parametrize("loss", ["ce", "cosface"])
def test_identity_accuracy_matches_a_naive_loop(loss):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 8))
    head = IdentityHead(loss, 4, 8, 0.35, 64.0)
    images, labels = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 4, (10,))
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    hits = 0
    for x, y in zip(images, labels):
        e = net(((x.float() / 255 - mean) / std)[None])[0]
        if loss == "ce":  # the linear classifier's argmax
            scores = head.fc.weight @ e + head.fc.bias
        else:  # the cosine to each class weight
            scores = F.normalize(head.criterion.W, dim=0).T @ F.normalize(e, dim=0)
        hits += int(scores.argmax() == y)
    assert identity_accuracy(net, head, images, labels, torch.device("cpu"), batch_size=3) == pytest.approx(hits / 10)
    assert IdentityHead(loss, 4, 8, 0.35, 64.0)(torch.randn(5, 8), torch.arange(5) % 4).ndim == 0  # a mean loss


@pytest.fixture(scope="module")
def toy_weights(tmp_path_factory):
    """`tan pretrain` at toy scale (6 identities, 32 px, 1 epoch): the file and the log."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("pretrain") / "weights" / "toy.pth"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["pretrain", "--out", str(out)] + [a for t in TOY for a in ("--set", t)]) == 0
    return out, buf.getvalue()


def test_toy_pretraining_writes_a_file_the_msceleb_loader_takes(toy_weights, tmp_path, capsys):
    out, log = toy_weights
    assert "[pretrain] held-out identity accuracy" in log and "use it with --set pretrained=" in log
    # the file: a plain torchvision state dict (no fc) beside its provenance, readable with weights_only
    raw = torch.load(out, map_location="cpu", weights_only=True)
    state, provenance = raw["state_dict"], raw["provenance"]
    assert set(raw) == {"state_dict", "provenance"} and not any(k.startswith("fc.") for k in state)
    assert set(state) == set(torchvision.models.resnet18().state_dict()) - {"fc.weight", "fc.bias"}
    # provenance: generator settings, training config, sha256, held-out identity accuracy
    assert provenance["made_by"] == MADE_BY
    assert provenance["generator"]["identities"] == 6 and provenance["generator"]["streams"][:3] == [11, 15, 17]
    assert (
        provenance["training"]
        == PretrainConfig.from_dict({t.split("=")[0]: json.loads(t.split("=")[1]) for t in TOY}).to_dict()
    )
    assert provenance["weights_sha256"] == weights_sha256(state)
    assert provenance["heldout_images"] == 6 and provenance["heldout_identity_accuracy"] in {k / 6 for k in range(7)}
    assert len(provenance["history"]) == 1 and provenance["loss"] == {"name": "ce", "margin": None, "scale": None}
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["file_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert sidecar["weights_sha256"] == provenance["weights_sha256"]
    # the round trip through the existing loader: every backbone tensor, identical
    model = build_model(preset("tan", pretrained=str(out)), num_classes=7)
    report = model.load_report
    assert report.loaded == report.total == 120 and report.coverage >= 0.9 and report.unexpected == 0
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert report.provenance["weights_sha256"] == provenance["weights_sha256"]
    assert "held-out identity accuracy" in capsys.readouterr().out  # the loader prints the provenance
    # a file changed after it was made is refused
    state["conv1.weight"] += 1e-3
    torch.save({"state_dict": state, "provenance": provenance}, tmp_path / "altered.pth")
    with pytest.raises(CheckpointError, match="altered after it was made"):
        build_model(preset("tan", pretrained=str(tmp_path / "altered.pth")), num_classes=7)
    # and an existing file is not overwritten without --overwrite
    assert main(["pretrain", "--out", str(out), "--set", "identities=2"]) == 5
    assert "already exists" in capsys.readouterr().err


def test_training_from_the_file_records_its_provenance(toy_weights, smoke, tmp_path):
    from tanlib.engine import train

    out, _ = toy_weights
    run = train(
        smoke("ce", pretrained=str(out), image_size=32, epochs=1, max_train_samples=32, batch_size=16, num_threads=1),
        tmp_path / "run",
    )
    record = json.loads((run / "pretrained.json").read_text())
    assert record["loaded"] == record["total"] == 120 and record["source"] == str(out)
    assert record["provenance"]["weights_sha256"] == read_weights(out)[1]["weights_sha256"]


def test_pretrain_settings_are_checked_by_name(capsys):
    with pytest.raises(ConfigError, match=r"unknown pretraining key\(s\) \['identites'\]"):
        PretrainConfig.from_dict({"identites": 10})
    with pytest.raises(ConfigError, match="heldout_per_identity=3 must be below images_per_identity=3"):
        PretrainConfig.from_dict({"heldout_per_identity": 3, "images_per_identity": 3})
    with pytest.raises(ConfigError, match="loss='triplet' is not allowed"):
        PretrainConfig.from_dict({"loss": "triplet"})
    assert main(["pretrain", "--set", "epochs=0"]) == 2
    assert "epochs=0 is out of range" in capsys.readouterr().err
    assert PretrainConfig(loss="arcface").resolved_margin == 28.6 and PretrainConfig(loss="ce").resolved_margin is None


def _fake_default_file(path, **training):
    """A weights file as the default `tan pretrain` would write it (random weights)."""
    net = torchvision.models.resnet18()
    net.fc = torch.nn.Identity()
    state = net.state_dict()
    provenance = {
        "made_by": MADE_BY,
        "training": {**PretrainConfig().to_dict(), **training},
        "generator": {"identities": 1000},
        "heldout_identity_accuracy": 0.5,
        "weights_sha256": weights_sha256(state),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "provenance": provenance}, path)
    return state


def test_pretrained_synthface_names_the_cached_default_file(tmp_path, monkeypatch):
    import tanlib.models.pretrained as pretrained

    path = tmp_path / "data" / "pretrained" / "synthface-resnet18-64px.pth"
    monkeypatch.setattr(pretrained, "synthface_path", lambda backbone="resnet18", image_size=64: path)
    config = preset("ce", "smoke", pretrained="synthface")
    with pytest.raises(CheckpointError, match=r"does not exist yet; make it with `tan pretrain`"):
        build_model(config, num_classes=7)
    _fake_default_file(path, epochs=1, identities=6)  # e.g. a toy run written to the default place
    epochs = PretrainConfig().epochs
    with pytest.raises(CheckpointError, match=rf"other settings .*epochs: 1 there vs {epochs} by default.*identities"):
        build_model(config, num_classes=7)
    state = _fake_default_file(path, num_threads=2, progress=False)  # runtime keys do not count
    model = build_model(config, num_classes=7, verbose=False)
    assert model.load_report.source == str(path) and model.load_report.loaded == 120
    assert all(torch.equal(v, state[k]) for k, v in model.backbone.state_dict().items())
    torch.save(state, path)  # weights without provenance are not the synthface file
    with pytest.raises(CheckpointError, match="no `tan pretrain` provenance"):
        check_default_synthface(path)


def test_tan_run_set_pretrained_reaches_training_and_is_prepared_first(tmp_path, monkeypatch, capsys):
    import tanlib.engine.pretrain as pt
    import tanlib.models.pretrained as pretrained
    from tanlib.pipeline import plan_pipeline, prepare_pretrained

    path = tmp_path / "synthface-resnet18-64px.pth"
    monkeypatch.setattr(pretrained, "synthface_path", lambda backbone="resnet18", image_size=64: path)
    made = []

    def fake_pretrain(config, out, overwrite=False, log=print):  # the real loop is tested above
        made.append(config)
        _fake_default_file(out)

    monkeypatch.setattr(pt, "pretrain", fake_pretrain)
    jobs = plan_pipeline(tmp_path / "run", "smoke", params={"overrides": {"pretrained": "synthface"}})
    assert [j.parameters["overrides"] for j in jobs if j.notebook == "02_train"] == [{"pretrained": "synthface"}] * 2
    lines = []
    prepare_pretrained(jobs, log=lines.append)
    assert len(made) == 1 and made[0] == PretrainConfig() and path.is_file()  # made once, with the defaults
    assert "is missing; making it now with the default `tan pretrain`" in lines[0]
    prepare_pretrained(jobs, log=lines.append)  # cached: nothing made again
    assert len(made) == 1
    # `tan run --set` merges into 02_train's overrides; a missing file stops the run before any notebook
    out = tmp_path / "runs"
    code = main(
        [
            "run",
            "--preset",
            "smoke",
            "--out",
            str(out),
            "--run-id",
            "r",
            "-p",
            'overrides={"epochs": 1}',
            "--set",
            "pretrained=missing.pth",
        ]
    )
    assert code == CheckpointError.exit_code and "missing.pth does not exist" in capsys.readouterr().err
    record = json.loads((out / "r" / "pipeline.json").read_text())
    assert record["params"] == {"overrides": {"epochs": 1, "pretrained": "missing.pth"}}
    assert record["status"].startswith("failed") and not (out / "r" / "notebooks").exists()
    assert main(["run", "--out", str(out), "-p", "overrides=3", "--set", "pretrained=x.pth"]) == PipelineError.exit_code
    assert "must be a JSON object" in capsys.readouterr().err
