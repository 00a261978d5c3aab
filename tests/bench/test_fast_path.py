"""The fast-path options give the default path's results within tolerance.

channels_last and bf16 autocast (on CPU) against float32 NCHW, the batched augmentation
against torchvision's per-sample transforms (exactly where deterministic, in
distribution where random), the covariance inverse cached once per update, and the
reference-style 'pil' input pipeline of the engine training end to end.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from tanlib.config import preset
from tanlib.data import BatchAugment, eval_transforms, train_transforms
from tanlib.engine.evaluate import predict
from tanlib.losses import MahalanobisDistance, TANObjective
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
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    y = torch.arange(16) % 7
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


# ------------------------------------------------------------------ batched augmentation
def test_batch_augment_without_randomness_equals_per_sample_eval_transforms():
    images = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8)
    batched = BatchAugment(flip=False, erasing_p=0.0)(images, generator=torch.Generator().manual_seed(0))
    per_sample = torch.stack([eval_transforms(40)(img) for img in images])
    torch.testing.assert_close(batched, per_sample, rtol=1e-5, atol=1e-5)


def test_batch_augment_flip_is_a_mirror_or_identity_and_deterministic():
    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    aug = BatchAugment(flip=True, erasing_p=0.0)
    out = aug(images, generator=torch.Generator().manual_seed(3))
    again = aug(images, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, again, rtol=0, atol=0)
    plain = aug.normalise(images)
    same = (out == plain).flatten(1).all(1)
    mirrored = (out == plain.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert 15 <= int(mirrored.sum()) <= 49  # p = 0.5, n = 64: far outside 4 sigma otherwise


def _erased(out: torch.Tensor, plain: torch.Tensor) -> torch.Tensor:
    """Fraction of pixels of each image that differ from the un-erased image."""
    return (out != plain).any(1).flatten(1).float().mean(1)


def test_batch_augment_erasing_matches_torchvision_in_distribution():
    """Erasing rate and erased-area distribution against v2.RandomErasing, same settings."""
    n, size, p = 1500, 32, 0.5
    images = torch.full((n, 3, size, size), 128, dtype=torch.uint8)
    aug = BatchAugment(flip=False, erasing_p=p)
    plain = aug.normalise(images)
    ours = _erased(aug(images, generator=torch.Generator().manual_seed(4)), plain)
    torch.manual_seed(4)
    erase = v2.RandomErasing(p=p, scale=(0.02, 0.25), value="random")
    theirs = _erased(torch.stack([erase(x) for x in plain]), plain)
    rate_ours, rate_theirs = (ours > 0).float().mean().item(), (theirs > 0).float().mean().item()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(rate_ours - p) < 4 * sigma and abs(rate_theirs - p) < 4 * sigma
    a, b = ours[ours > 0], theirs[theirs > 0]
    assert abs(a.mean().item() - b.mean().item()) < 0.02  # mean erased area (uniform 0.02-0.25: ~0.135)
    assert a.min() >= 0.015 and a.max() <= 0.28  # rounding of the rectangle, as in torchvision
    qa, qb = np.quantile(a.numpy(), [0.1, 0.5, 0.9]), np.quantile(b.numpy(), [0.1, 0.5, 0.9])
    np.testing.assert_allclose(qa, qb, atol=0.03)


def test_train_transforms_and_batch_augment_agree_on_unerased_pixels():
    """With erasing off, per-sample train transforms give the image or its mirror, as the batch path."""
    img = torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8)
    tf = train_transforms(24, erasing_p=0.0)
    plain = BatchAugment(flip=False, erasing_p=0.0)(img[None])[0]
    torch.manual_seed(0)
    for _ in range(6):
        out = tf(img)
        assert torch.allclose(out, plain, atol=1e-5) or torch.allclose(out, plain.flip(-1), atol=1e-5)


# ------------------------------------------------------------------ covariance cache
def test_covariance_inverse_is_computed_once_per_update():
    d = MahalanobisDistance("covariance", dim=8)
    x = F.normalize(torch.randn(32, 8), dim=1)
    d(x)
    assert d.inverse_computations == 1  # the identity before any update, once
    d.update(x)
    for _ in range(5):
        d(x)
        d.pairwise_distance(x[:4], x[4:8])
    assert d.inverse_computations == 2
    m1 = d.matrix()
    d.update(F.normalize(torch.randn(32, 8), dim=1))
    d(x)
    assert d.inverse_computations == 3
    assert not torch.allclose(d.matrix(), m1)
    state = d.state_dict()
    e = MahalanobisDistance("covariance", dim=8)
    e.load_state_dict(state)
    torch.testing.assert_close(e.matrix(), d.matrix())


def test_cached_transform_gives_the_regularised_inverse():
    d = MahalanobisDistance("covariance", dim=6, shrinkage=1e-3).double()
    x = torch.randn(50, 6, dtype=torch.float64) @ torch.randn(6, 6, dtype=torch.float64)
    d.update(x)
    s = torch.cov(x.T)
    s = s / (torch.trace(s) / 6)
    want = torch.linalg.inv(s + 1e-3 * torch.eye(6, dtype=s.dtype))
    torch.testing.assert_close(d.matrix(), want, rtol=1e-8, atol=1e-8)
    u, v = x[:5], x[5:10]
    diff = u - v
    torch.testing.assert_close(d.pairwise_distance(u, v),
                               torch.sqrt(torch.einsum("ni,ij,nj->n", diff, want, diff) + d.eps))


def test_first_update_replaces_initial_state_then_ema():
    d = MahalanobisDistance("covariance", dim=4, momentum=0.25).double()
    a, b = torch.randn(20, 4, dtype=torch.float64), torch.randn(20, 4, dtype=torch.float64)
    d.update(a)
    torch.testing.assert_close(d.running_cov, torch.cov(a.T))
    d.update(b)
    torch.testing.assert_close(d.running_cov, 0.75 * torch.cov(a.T) + 0.25 * torch.cov(b.T))
    assert int(d.num_updates) == 2


# ------------------------------------------------------------------ the engine's 'pil' path
def test_engine_trains_with_the_reference_style_pil_pipeline(tmp_path):
    from tanlib.data import generate_synthfer
    from tanlib.engine.train import train

    root = generate_synthfer(tmp_path / "sf", n_train=90, n_test=30, size=48, seed=2, workers=1)
    config = preset("tan", "smoke", root=str(root), data_pipeline="pil", epochs=1, max_train_samples=64,
                    batch_size=16, image_size=32, progress=False, num_threads=2)
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
