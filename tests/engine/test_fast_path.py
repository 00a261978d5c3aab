"""The engine's fast-path options give the default path's results within tolerance: channels_last and
bf16 autocast (on CPU) against float32 NCHW, a training step with every fast option, and the
reference-style 'pil' input pipeline end to end."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tanlib.config import preset
from tanlib.engine.evaluate import predict
from tanlib.losses import TANObjective
from tanlib.models import TANOutput, build_model


@pytest.fixture(scope="module")
def model_and_images():
    torch.manual_seed(0)
    model = build_model(preset("tan", "smoke", image_size=32), num_classes=7, verbose=False).eval()
    images = torch.randint(0, 256, (24, 3, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    return model, images


def test_channels_last_predicts_the_same(model_and_images):
    model, images = model_and_images
    ref = predict(model, images)
    import copy

    fast = predict(copy.deepcopy(model).to(memory_format=torch.channels_last), images, channels_last=True)
    for key in ("logits", "attention", "embedding"):
        np.testing.assert_allclose(fast[key], ref[key], atol=1e-4, rtol=1e-4)
    assert (fast["pred"] == ref["pred"]).all()


def test_bf16_autocast_on_cpu_predicts_the_same_within_tolerance(model_and_images):
    model, images = model_and_images
    ref = predict(model, images)
    fast = predict(model, images, amp="bf16")
    scale = np.abs(ref["logits"]).max()
    assert np.abs(fast["logits"] - ref["logits"]).max() <= 0.05 * scale  # bf16: 8 bits of mantissa
    assert np.abs(fast["embedding"] - ref["embedding"]).max() <= 0.02
    assert np.abs(fast["attention"] - ref["attention"]).max() <= 0.02
    assert (fast["pred"] == ref["pred"]).mean() >= 0.9
    assert fast["logits"].dtype == np.float32


def _step(method, x, y, channels_last=False, amp=False):
    config = preset(method, "smoke", image_size=32)
    torch.manual_seed(0)
    model = build_model(config, num_classes=7, verbose=False).train()
    obj = TANObjective(config, embedding_dim=model.embedding_dim).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = model(x)
    out = TANOutput(*(t.float() for t in out))
    total, _ = obj(out, y)
    total.backward()
    grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return float(total.detach()), grad


def test_training_step_with_fast_options_matches_default():
    """One step's loss (tan objective) and gradients (CE: no discontinuous hardest-triplet
    choice) with channels_last match float32 NCHW; with bf16 the loss is close."""
    x = torch.randn(10, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    y = torch.arange(10) % 5  # every class twice: positives for the triplets
    loss, _ = _step("tan", x, y)
    loss_cl, _ = _step("tan", x, y, channels_last=True)
    loss_bf, _ = _step("tan", x, y, amp=True)
    assert loss_cl == pytest.approx(loss, rel=1e-3, abs=1e-5)
    assert loss_bf == pytest.approx(loss, rel=0.05)
    _, grad = _step("ce", x, y)
    _, grad_cl = _step("ce", x, y, channels_last=True)
    _, grad_bf = _step("ce", x, y, amp=True)
    assert (grad_cl - grad).norm() <= 1e-3 * grad.norm()
    assert F.cosine_similarity(grad_bf, grad, dim=0) >= 0.9  # bf16 activations: a noisier, same-direction gradient


# ------------------------------------------------------------------ the engine's 'pil' path
def test_engine_trains_with_the_reference_style_pil_pipeline(tmp_path):
    from tanlib.data import generate_synthfer
    from tanlib.engine.train import train

    root = generate_synthfer(tmp_path / "sf", n_train=90, n_test=30, size=48, seed=2, workers=1)
    config = preset(
        "tan",
        "smoke",
        root=str(root),
        data_pipeline="pil",
        epochs=1,
        max_train_samples=64,
        batch_size=16,
        image_size=32,
        progress=False,
        num_threads=1,
    )
    run = train(config, tmp_path / "run", log=lambda *a, **k: None)
    import json

    import pandas as pd

    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["results"]["last"]["accuracy"] <= 1
    hist = pd.read_csv(run / "history.csv")
    assert len(hist) == 1 and hist["images_per_s"].iloc[0] > 0 and np.isfinite(hist["loss_total"].iloc[0])
    assert hist["n_triplets"].iloc[0] > 0


def test_pil_loader_is_seeded_by_seed_and_epoch(tmp_path):
    from tanlib.data import build_manifest, generate_synthfer
    from tanlib.engine.train import epoch_batches, pil_loader

    root = generate_synthfer(tmp_path / "sf", n_train=40, n_test=14, size=48, seed=3, workers=1)
    frame = build_manifest("synthfer", root).split("train")
    config = preset("tan", "smoke", root=str(root), data_pipeline="pil", batch_size=8, image_size=32)
    labels = torch.tensor(frame["label"].to_numpy())

    def first(epoch):
        batches = epoch_batches(labels, config, epoch)
        x, y, idx = next(iter(pil_loader(frame, batches, config, epoch)))
        assert idx.tolist() == batches[0].tolist() and x.shape == (8, 3, 32, 32)
        return x

    torch.testing.assert_close(first(1), first(1))
    assert not torch.equal(first(1), first(2))
