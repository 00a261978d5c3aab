"""Benchmark 3: the input pipeline, end to end, against the model alone and a reference loader.

Three ways to feed the same training step (TAN network, ResNet-18, ``tan`` objective,
Adam; 64 px, batch 64, CPU), interleaved in one process:

* ``model``: the model alone on a pre-made, already normalised float batch (the ceiling);
* ``kit``: the engine's default path (``data_pipeline='tensor'``): images decoded once
  into a uint8 tensor by ``load_images``, each step indexes a batch from
  ``epoch_batches`` and augments it with ``BatchAugment`` (flip, normalise,
  RandomErasing) in one vectorised call;
* ``reference``: the engine's ``data_pipeline='pil'`` loader, i.e. what SCN's script
  does: a DataLoader over ``ManifestDataset`` that decodes every JPEG with PIL and runs
  the per-sample torchvision transforms (resize, flip, normalise, RandomErasing) every
  epoch (``num_workers=0``: the same single core as the others).

Images/s are the batch size over the step time; the figures are the per-round ratios
kit/model and reference/model. Goal: kit >= 90 % of model. The input stage alone (no
model) is timed too: the kit's index+augment against the reference's decode+transforms.

Usage: ``python bench/bench_input.py [--rounds 7] [--batch-size 64] [--size 64] [--threads 1]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import interleave, ratios, set_threads, summary, write_result  # noqa: E402
from tanlib.config import preset  # noqa: E402
from tanlib.data import BatchAugment, build_manifest, generate_synthfer, load_images  # noqa: E402
from tanlib.engine.train import epoch_batches, pil_loader  # noqa: E402
from tanlib.losses import TANObjective  # noqa: E402
from tanlib.models import build_model  # noqa: E402

GOAL = 0.90


def run(root: Path, rounds=7, batch_size=64, size=64, steps=2, backbone="resnet18", seed=0) -> dict:
    config = preset("tan", "quick", image_size=size, batch_size=batch_size, backbone=backbone, root=str(root))
    manifest = build_manifest("synthfer", root, val_fraction=0.1, seed=0)
    frame = manifest.split("train")
    images = load_images(frame, size)
    labels = torch.tensor(frame["label"].to_numpy(), dtype=torch.long)
    torch.manual_seed(seed)
    model = build_model(config, num_classes=len(manifest.classes), verbose=False).train()
    objective = TANObjective(config, embedding_dim=model.embedding_dim).train()
    opt = torch.optim.Adam(list(model.parameters()) + list(objective.parameters()), lr=1e-4)
    aug = BatchAugment(flip=config.hflip, erasing_p=config.erasing_p)

    def train_step(x, y):
        total, _ = objective(model(x), y)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    # endless batch streams, each a pure function of (seed, epoch) as in the engine
    def kit_batches():
        epoch = 0
        while True:
            epoch += 1
            gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
            for idx in epoch_batches(labels, config, epoch):
                yield aug(images[idx], generator=gen), labels[idx]

    def ref_batches():
        epoch = 0
        while True:
            epoch += 1
            batches = epoch_batches(labels, config, epoch)
            for idx, (x, _, _) in zip(batches, pil_loader(frame, batches, config, epoch)):
                yield x, labels[idx]

    kit, ref = kit_batches(), ref_batches()
    x0, y0 = next(kit)
    x0 = x0.clone()

    def v_model():
        for _ in range(steps):
            train_step(x0, y0)

    def v_kit():
        for _ in range(steps):
            train_step(*next(kit))

    def v_ref():
        for _ in range(steps):
            train_step(*next(ref))

    def in_kit():
        for _ in range(steps):
            next(kit)

    def in_ref():
        for _ in range(steps):
            next(ref)

    t = interleave(
        {"model": v_model, "kit": v_kit, "reference": v_ref, "input_kit": in_kit, "input_reference": in_ref}, rounds
    )
    n = steps * batch_size
    rate = {k: [n / s for s in v] for k, v in t.items()}
    kit_ratio = ratios(rate["kit"], rate["model"])
    ref_ratio = ratios(rate["reference"], rate["model"])
    # decomposed: each pipeline's step = the model's step + its input stage, timed apart
    # in the same round (robust when a shared machine makes whole steps jitter)
    dec_kit = [m / (m + i) for m, i in zip(t["model"], t["input_kit"])]
    dec_ref = [m / (m + i) for m, i in zip(t["model"], t["input_reference"])]
    res = {
        "seconds_raw": {k: [round(x, 4) for x in v] for k, v in t.items()},
        "kit_over_model_decomposed": summary(dec_kit),
        "reference_over_model_decomposed": summary(dec_ref),
        "images_per_s": {k: summary(v, 1) for k, v in rate.items()},
        "kit_over_model": summary(kit_ratio),
        "reference_over_model": summary(ref_ratio),
        "kit_over_reference": summary(ratios(rate["kit"], rate["reference"])),
        "input_stage_kit_over_reference": summary(ratios(rate["input_kit"], rate["input_reference"]), 1),
        "train_images": len(frame),
        "goal_kit_over_model_at_least": GOAL,
        "met": summary(kit_ratio)["median"] >= GOAL and summary(dec_kit)["median"] >= GOAL,
    }
    print(
        f"kit/model {res['kit_over_model']['median']:.3f} (min {min(kit_ratio):.3f}, max {max(kit_ratio):.3f}), "
        f"decomposed {res['kit_over_model_decomposed']['median']:.3f}, reference decomposed "
        f"{res['reference_over_model_decomposed']['median']:.3f}; "
        f"reference/model {res['reference_over_model']['median']:.3f}; input stage alone: kit "
        f"{res['input_stage_kit_over_reference']['median']:.1f}x the reference"
    )
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=2, help="training steps per timed block")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n-train", type=int, default=640, help="SynthFER training images generated for the run")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tiny", action="store_true", help="a seconds-long correctness run (tests)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    if args.tiny:
        args.rounds, args.steps, args.batch_size, args.size, args.n_train = 1, 1, 8, 32, 60
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthfer(
            Path(tmp) / "synthfer",
            n_train=args.n_train,
            n_test=max(args.n_train // 10, 20),
            size=100,
            seed=0,
            workers=1,
            label_noise=0.0,
        )  # speed only: no noise
        res = run(root, args.rounds, args.batch_size, args.size, args.steps, args.backbone)
    params = {
        k: getattr(args, k) for k in ("rounds", "steps", "batch_size", "size", "n_train", "backbone", "threads", "tiny")
    }
    write_result("input_pipeline", {"params": params, **res}, args.out)
    return res


if __name__ == "__main__":
    main()
