"""The batched augmentation against torchvision's per-sample transforms: exactly where
deterministic, in distribution where random."""

import math

import numpy as np
import torch
from torchvision.transforms import v2

from tanlib.data import BatchAugment, eval_transforms, train_transforms


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
