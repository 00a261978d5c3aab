"""Image loading, the on-disk cache, BatchAugment and the per-sample Dataset."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from datafix import tiny_image
from PIL import Image

from tanlib.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BatchAugment,
    ManifestDataset,
    eval_transforms,
    load_images,
    m_per_class_sampler,
    train_transforms,
)
from tanlib.errors import DataError


@pytest.fixture
def frame(tmp_path):
    paths = [
        tiny_image(tmp_path / f"im{i}.{'png' if i % 2 else 'jpg'}", seed=i, size=20, mode="L" if i == 3 else "RGB")
        for i in range(6)
    ]
    return pd.DataFrame({"path": [str(p) for p in paths], "label": [0, 1, 2, 0, 1, 2]})


def test_load_images_matches_naive_reference(frame):
    x = load_images(frame, size=16)
    assert x.dtype == torch.uint8 and x.shape == (6, 3, 16, 16)
    for i, p in enumerate(frame["path"]):
        im = Image.open(p).convert("RGB")
        if im.format == "JPEG" or p.endswith(".jpg"):
            continue  # JPEG draft decoding may differ from a full decode by rounding
        ref = np.asarray(im.resize((16, 16), Image.BILINEAR, reducing_gap=2.0)).transpose(2, 0, 1)
        assert np.array_equal(x[i].numpy(), ref)
    gray = x[3]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])  # promoted to RGB


def test_cache_round_trip_and_invalidation(frame, tmp_path):
    cache = tmp_path / "cache"
    a = load_images(frame, size=16, cache_dir=cache)
    files = list(cache.glob("images_*.npy"))
    assert len(files) == 1
    np.save(files[0], np.zeros_like(a.numpy()))  # prove the second call reads the cache
    assert load_images(frame, size=16, cache_dir=cache).sum() == 0
    assert load_images(frame, size=12, cache_dir=cache).shape[-1] == 12  # other size, other key
    tiny_image(Path(frame["path"][0]), seed=99, size=30)  # file changed
    b = load_images(frame, size=16, cache_dir=cache)
    assert b.sum() > 0 and len(list(cache.glob("images_*.npy"))) == 3


def test_missing_image_is_a_data_error(frame):
    frame.loc[0, "path"] = "/nonexistent/x.jpg"
    with pytest.raises(DataError, match="/nonexistent/x.jpg"):
        load_images(frame, size=16)


def test_batch_augment_eval_is_plain_normalisation():
    x = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    out = BatchAugment()(x, train=False)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert out.dtype == torch.float32
    assert torch.allclose(out, (x.float() / 255 - mean) / std, atol=1e-6)


def test_batch_augment_deterministic_and_flip_semantics():
    x = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    aug = BatchAugment()
    a = aug(x, generator=torch.Generator().manual_seed(5))
    b = aug(x, generator=torch.Generator().manual_seed(5))
    c = aug(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    flip_only = BatchAugment(erasing_p=0)(x, generator=torch.Generator().manual_seed(1))
    plain = aug.normalise(x)
    same = (flip_only == plain).flatten(1).all(1)
    flipped = (flip_only == plain.flip(-1)).flatten(1).all(1)
    assert (same | flipped).all() and 10 < flipped.sum() < 54


def test_batch_augment_erasing_rectangles():
    n, h, w = 400, 32, 32
    x = torch.full((n, 3, h, w), 128, dtype=torch.uint8)
    out = BatchAugment(flip=False, erasing_p=0.5)(x, generator=torch.Generator().manual_seed(0))
    erased = (out != BatchAugment().normalise(x)[:1]).any(1)  # (n, h, w)
    frac = erased.flatten(1).float().mean(1)
    hit = frac > 0
    assert 0.4 < hit.float().mean() < 0.6  # p = 0.5
    assert frac[hit].min() >= 0.015 and frac[hit].max() <= 0.26  # area scale 0.02-0.25 (rounding)
    for i in torch.nonzero(hit).flatten()[:50]:  # each erased region is one axis-aligned rectangle
        rows, cols = erased[i].any(1), erased[i].any(0)
        assert erased[i].sum() == rows.sum() * cols.sum()
        assert 0.3 / 1.6 <= rows.sum() / cols.sum() <= 3.3 * 1.6


def test_manifest_dataset_and_presets(frame):
    ds = ManifestDataset(frame, transform=eval_transforms(16), cache=True)
    img, label, index = ds[3]
    assert img.shape == (3, 16, 16) and img.dtype == torch.float32 and (label, index) == (0, 3)
    assert 3 in ds.cache and len(ds) == 6
    tr = ManifestDataset(frame, transform=train_transforms(16))
    torch.manual_seed(0)
    assert tr[0][0].shape == (3, 16, 16)
    # eval preset on an image already at size equals BatchAugment's normalisation of it
    x = load_images(frame, size=20)
    ev = ManifestDataset(frame, transform=eval_transforms(20))
    assert torch.allclose(ev[1][0], BatchAugment()(x[1:2], train=False)[0], atol=1e-5)


def test_m_per_class_sampler():
    labels = np.repeat(np.arange(4), 10)
    sampler = m_per_class_sampler(labels, m=2, batch_size=8)
    idx = list(iter(sampler))
    for start in range(0, len(idx) - 7, 8):
        counts = np.bincount(labels[idx[start : start + 8]], minlength=4)
        assert sorted(counts.tolist()) == [2, 2, 2, 2]
    with pytest.raises(DataError, match="multiple of m"):
        m_per_class_sampler(labels, m=3, batch_size=8)


# ---------------------------------------------------------------------- decode_rgb: formats and limits
def test_sixteen_bit_keeps_the_high_byte(tmp_path):
    from tanlib.data.decode import decode_rgb

    ramp = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)  # 0..65535
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    got = np.asarray(decode_rgb(tmp_path / "g16.png"))
    assert got.dtype == np.uint8 and got.shape == (16, 16, 3)
    assert np.array_equal(got[..., 0], (ramp >> 8).astype(np.uint8))  # not clipped to white
    assert np.array_equal(got[..., 0], got[..., 2])


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "ICO"])
def test_formats_outside_the_list_are_not_images(tmp_path, fmt):
    from tanlib.data.decode import ImageProblem, decode_rgb

    path = tmp_path / "face.jpg"  # the extension says JPEG; the content decides
    Image.new("RGB", (16, 16), (1, 2, 3)).save(path, fmt)
    with pytest.raises(ImageProblem) as err:
        decode_rgb(path)
    assert err.value.kind == "not_image" and str(path) in str(err.value)


def test_pixel_limit_from_the_environment(tmp_path, monkeypatch):
    from tanlib.data.decode import MAX_IMAGE_PIXELS, MAX_PIXELS_ENV, ImageProblem, decode_rgb, max_image_pixels
    from tanlib.errors import ConfigError

    path = tiny_image(tmp_path / "a.png", size=20)
    assert max_image_pixels() == MAX_IMAGE_PIXELS
    monkeypatch.setenv(MAX_PIXELS_ENV, "400")
    assert decode_rgb(path).size == (20, 20)  # exactly at the limit: accepted
    monkeypatch.setenv(MAX_PIXELS_ENV, "399")
    with pytest.raises(ImageProblem, match="20 x 20 = 400 pixels") as err:
        decode_rgb(path)
    assert err.value.kind == "too_large"
    for bad in ("0", "-5", "1e6", "many"):
        monkeypatch.setenv(MAX_PIXELS_ENV, bad)
        with pytest.raises(ConfigError, match=MAX_PIXELS_ENV):
            max_image_pixels()


def test_read_rgb_and_dataset_name_the_problem_kind(tmp_path):
    from tanlib.data.decode import ImageProblem

    empty = tmp_path / "e.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"\[empty_file\].*e\.jpg"):
        load_images(pd.DataFrame({"path": [str(empty)], "label": [0]}), size=16)
    ds = ManifestDataset(pd.DataFrame({"path": [str(empty)], "label": [0]}))
    with pytest.raises(ImageProblem, match=r"\[empty_file\]"):
        ds[0]
