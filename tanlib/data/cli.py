"""``tan data`` sub-commands: synth, check, manifest, baseline, ceiling.

``check`` prints the counts table and every problem and exits 0 when clean, or with
DataError's exit code (3) when there are problems.
"""

from __future__ import annotations

import json
import time

from ..errors import DataError
from .manifest import DATASETS, build_manifest, check_dataset


def _dataset_options(p, dataset_required=True):
    if dataset_required:
        p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--root", required=True, help="dataset root folder")
    p.add_argument("--protocol", default="default", choices=["default", "ran"], help="FERPlus only")
    p.add_argument("--class-names", default=None, help="comma-separated class names (folder datasets)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="stratified share of train moved to val when the source has no val split",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None, help="where FER2013 pixels are decoded to (FERPlus)")


def _opts(args):
    names = args.class_names.split(",") if getattr(args, "class_names", None) else None
    return dict(
        val_fraction=args.val_fraction,
        seed=args.seed,
        protocol=args.protocol,
        class_names=names,
        cache_dir=args.cache_dir,
    )


def _synth(args):
    from .synthfer import generate_synthfer

    t = time.perf_counter()
    out = generate_synthfer(
        args.out,
        n_train=args.n_train,
        n_test=args.n_test,
        size=args.size,
        label_noise=args.label_noise,
        seed=args.seed,
        images_per_identity=args.images_per_identity,
        occluder_fraction=args.occluder_fraction,
        intensity_floor=args.intensity_floor,
        resting_bias=args.resting_bias,
        noise_model=args.noise_model,
        n_annotators=args.n_annotators,
        blend_fraction=args.blend_fraction,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    n = args.n_train + args.n_test
    print(f"wrote {n} SynthFER images to {out} in {time.perf_counter() - t:.1f} s")
    return 0


def _check(args):
    report = check_dataset(args.dataset, args.root, **_opts(args))
    print(report)
    if not report.ok:
        raise DataError(f"{args.dataset} at {args.root}: {len(report.problems)} problem(s), listed above")
    return 0


def _manifest(args):
    m = build_manifest(args.dataset, args.root, skip_problems=args.skip_problems, **_opts(args))
    path = m.save(args.out)
    print(m.counts().to_string())
    print(f"wrote {path} ({len(m.frame)} images, {len(m.skipped)} skipped)")
    return 0


def _baseline(args):
    from .baseline import pixel_baseline

    m = build_manifest(args.dataset, args.root, **_opts(args))
    result = pixel_baseline(m, size=args.size, C=args.C)
    print(json.dumps(result, indent=2))
    return 0


def _ceiling(args):
    from .ceiling import synthfer_ceiling

    print(json.dumps(synthfer_ceiling(args.root, seed=args.seed), indent=2))
    return 0


def register(subparsers) -> None:
    from .synthfer import NOISE_MODELS, synthfer_settings

    data = subparsers.add_parser("data", help="datasets: generate SynthFER, check, build manifests")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("synth", help="generate a SynthFER dataset (RAF-DB layout)")
    p.add_argument("--out", required=True)
    d = synthfer_settings()  # the generator's own defaults: defined once, in generate_synthfer
    p.add_argument("--n-train", type=int, default=d["n_train"])
    p.add_argument("--n-test", type=int, default=d["n_test"])
    p.add_argument("--size", type=int, default=d["size"])
    p.add_argument(
        "--label-noise",
        type=float,
        default=d["label_noise"],
        help=f"share of wrong training labels (default {d['label_noise']})",
    )
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--images-per-identity", type=int, default=d["images_per_identity"])
    p.add_argument("--occluder-fraction", type=float, default=d["occluder_fraction"])
    p.add_argument(
        "--intensity-floor",
        type=float,
        default=d["intensity_floor"],
        help=f"weakest expression intensity: floor + (1 - floor) * Beta(2.2, 1.5) (default {d['intensity_floor']})",
    )
    p.add_argument(
        "--resting-bias",
        type=float,
        default=d["resting_bias"],
        help=f"per identity and action unit, probability of a resting bias up to 0.3 (default {d['resting_bias']})",
    )
    p.add_argument(
        "--noise-model",
        default=d["noise_model"],
        choices=NOISE_MODELS,
        help="annotators: majority of simulated votes whose errors follow the face's ambiguity; "
        "uniform: random flips to a confusable class, as version 2; random: a share of the labels flipped to "
        f"another class chosen at random, SCN's RAF-DB protocol (default {d['noise_model']})",
    )
    p.add_argument(
        "--n-annotators",
        type=int,
        default=d["n_annotators"],
        help=f"votes per training face, annotators model (default {d['n_annotators']})",
    )
    p.add_argument(
        "--blend-fraction",
        type=float,
        default=d["blend_fraction"],
        help="share of expressive faces with a second, weaker expression; 0 with --noise-model "
        f"uniform draws version 2's images (default {d['blend_fraction']})",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU count, max 8)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_synth)

    p = sub.add_parser("check", help="validate a dataset; exit 0 when clean, 3 with the problem list")
    _dataset_options(p)
    p.set_defaults(func=_check)

    p = sub.add_parser("manifest", help="write a dataset's manifest CSV (+ JSON sidecar)")
    _dataset_options(p)
    p.add_argument("--out", required=True)
    p.add_argument("--skip-problems", action="store_true", help="leave problem images out instead of failing")
    p.set_defaults(func=_manifest)

    p = sub.add_parser("baseline", help="logistic regression on raw pixels (sanity band)")
    p.add_argument("--dataset", default="synthfer", choices=DATASETS)
    _dataset_options(p, dataset_required=False)
    p.add_argument("--size", type=int, default=32, help="grayscale side length of the pixel features")
    p.add_argument("--C", type=float, default=0.01, help="inverse L2 strength")
    p.set_defaults(func=_baseline)

    p = sub.add_parser(
        "ceiling", help="SynthFER's ceiling: gradient boosting on the generator's own parameters (docs/protocol.md)"
    )
    p.add_argument("--root", required=True, help="a SynthFER folder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_ceiling)
