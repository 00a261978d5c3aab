"""``tan train`` and ``tan evaluate``: the engine's command line, the only one.

This module owns the engine's sub-commands: their arguments, how they become a ``Config``,
and the end of a training command (the process group, if any, is torn down). ``python -m
tanlib.engine.train ARGS``, the form ``torchrun`` launches (docs/training.md, Distributed
training), is ``tan train ARGS`` through ``main``.
"""

from __future__ import annotations

import json
import sys

from ..config import METHODS, SCALES, Config, parse_set, preset


def register(sub) -> None:
    p = sub.add_parser("train", help="train one method into a run directory")
    p.add_argument("--method", default="tan", help=f"one of {', '.join(METHODS)} (default tan)")
    p.add_argument("--preset", default="quick", help=f"scale preset: {', '.join(SCALES)} (default quick)")
    p.add_argument("--dataset", default=None, help="synthfer (default), rafdb, ferplus or folder")
    p.add_argument(
        "--root",
        default=None,
        help="dataset root (default: the preset's, data/synthfer; data/synthfer-calibrated for calibrated)",
    )
    p.add_argument("--config", default=None, help="start from a config JSON instead of the presets")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key (repeatable), e.g. --set epochs=3 --set deterministic=true",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="evaluate a run directory's checkpoint")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument(
        "--checkpoint",
        default=None,
        choices=["best", "last"],
        help="best: best validation accuracy; last: last epoch (default: the run's primary one, config selection)",
    )
    e.add_argument("--tta-flip", action="store_true", help="average the logits of each image and its mirror")
    e.add_argument("--dataset", default=None, help="cross-dataset: evaluate on another dataset")
    e.add_argument("--root", default=None, help="root of --dataset")
    e.add_argument(
        "--class-map",
        default=None,
        help="JSON mapping of the other dataset's class names to the run's, e.g. '{\"contempt\": null}'",
    )
    e.set_defaults(func=_evaluate)


def main(argv: list[str] | None = None) -> int:
    """``python -m tanlib.engine.train ARGS`` (also under ``torchrun``): ``tan train ARGS``."""
    from ..cli import main as tan

    return tan(["train", *(sys.argv[1:] if argv is None else argv)])


def _train(args) -> int:
    from . import distributed
    from .train import train

    overrides = parse_set(args.set)
    for key in ("dataset", "root"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.config:
        config = Config.load(args.config).replace(**overrides)
    else:
        config = preset(args.method, args.preset, **overrides)
    try:
        train(config, args.out, resume=args.resume, overwrite=args.overwrite)
    finally:
        distributed.teardown()
    return 0


def _evaluate(args) -> int:
    from ..errors import ConfigError
    from .evaluate import evaluate, run_checkpoint

    if (args.dataset is None) != (args.root is None):
        raise ConfigError("--dataset and --root go together (cross-dataset evaluation)")
    class_map = None
    if args.class_map:
        try:
            class_map = json.loads(args.class_map)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--class-map is not valid JSON: {exc}") from None
    args.checkpoint = run_checkpoint(args.run_dir, args.checkpoint)
    block = evaluate(
        args.run_dir,
        split=args.split,
        checkpoint=args.checkpoint,
        tta_flip=args.tta_flip,
        dataset=args.dataset,
        root=args.root,
        class_map=class_map,
    )
    features, embedding = block["geometry_features"], block["geometry"]
    print(
        f"{args.run_dir} [{args.checkpoint}, {args.split}{', ' + args.dataset if args.dataset else ''}]: "
        f"accuracy {100 * block['accuracy']:.2f} %, mean class accuracy {100 * block['mean_class_accuracy']:.2f} %, "
        f"macro F1 {100 * block['macro_f1']:.2f} %, intra/inter features {features['ratio']:.3f}, "
        f"embedding " + (f"{embedding['ratio']:.3f}" if embedding else "n/a (not trained)")
    )
    return 0
