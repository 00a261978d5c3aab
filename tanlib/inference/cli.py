"""``tan export`` and ``tan predict``.

``tan export RUN_DIR --out PATH [--format torch|onnx] [--checkpoint best|last]`` (default: the
run's primary checkpoint) writes
``<PATH stem>-<hash8>.pt`` (or ``.onnx``) and its model card; ``tan predict --model PATH
INPUT... [--out results.csv|results.json] [--detect-faces]`` predicts images, folders and
text lists. Skipped inputs are named on stderr; the exit status is 0 when at least one
image was predicted, DataError's (3) when none was.
"""

from __future__ import annotations

import sys


def register(sub) -> None:
    e = sub.add_parser("export", help="export a run's checkpoint as a self-describing weights file + model card")
    e.add_argument("run_dir")
    e.add_argument(
        "--out",
        required=True,
        help="file path (its stem gets -<sha256[:8]> and the format's suffix) or an existing folder",
    )
    e.add_argument(
        "--format",
        default="torch",
        choices=["torch", "onnx"],
        help="torch: tensors + metadata, torch.load(weights_only=True)-loadable (default); "
        "onnx: dynamic-batch ONNX graph with the metadata in metadata_props (needs tanlib[onnx])",
    )
    e.add_argument(
        "--checkpoint",
        default=None,
        choices=["best", "last"],
        help="best: best validation accuracy; last: last epoch (default: the run's primary one, config selection)",
    )
    e.set_defaults(func=_export)

    p = sub.add_parser("predict", help="predict the expression of new face images with an exported model")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="an image, a folder (searched recursively) or a text list of image paths (.txt/.lst/.list)",
    )
    p.add_argument("--model", required=True, help="an exported model (.pt or .onnx, from tan export)")
    p.add_argument(
        "--out",
        default=None,
        help="results.csv (skipped inputs in results.skipped.csv) or results.json; default: CSV on stdout",
    )
    p.add_argument(
        "--detect-faces",
        action="store_true",
        help="crop the largest face found by OpenCV's Haar cascade first (needs tanlib[detect])",
    )
    p.add_argument(
        "--face-margin",
        type=float,
        default=0.2,
        help="with --detect-faces: widen the face box by this fraction of its size per side (0.2)",
    )
    p.add_argument("--min-face", type=int, default=24, help="with --detect-faces: smallest face in px (24)")
    p.add_argument(
        "--classes",
        default=None,
        help="output label order: rafdb, ferplus or comma-separated names (matched case-insensitively)",
    )
    p.add_argument(
        "--class-map",
        default=None,
        help="JSON object or JSON file mapping model classes to output classes, null drops one, "
        "e.g. '{\"contempt\": null}'",
    )
    p.add_argument("--embedding", action="store_true", help="also write the embedding (emb_* columns)")
    p.add_argument("--tta-flip", action="store_true", help="average the logits of each image and its mirror")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N (torch models)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_predict)


def _export(args) -> int:
    from ..engine.evaluate import run_checkpoint
    from .export import export_run

    checkpoint = run_checkpoint(args.run_dir, args.checkpoint)
    res = export_run(args.run_dir, args.out, format=args.format, checkpoint=checkpoint)
    m = res.meta["metrics"]
    print(
        f"wrote {res.path} ({res.meta['num_params']:,} parameters, {len(res.meta['classes'])} classes, "
        f"sha256 {res.sha256})"
    )
    print(f"model card {res.card}")
    print(
        f"test accuracy {100 * m['accuracy']:.2f} %, macro F1 {100 * m['macro_f1']:.2f} % "
        f"({res.meta['dataset']['name']}, {res.meta['checkpoint']['selection']})"
    )
    return 0


def _predict(args) -> int:
    import torch

    from ..errors import ConfigError, DataError
    from .classmap import read_class_map
    from .faces import FaceDetector
    from .predict import write_results
    from .weights import file_sha256, load_model

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size} must be >= 1")
    if args.out is not None and not args.out.lower().endswith((".csv", ".json")):
        raise ConfigError(f"--out {args.out}: expected a .csv or .json file name")
    class_map = read_class_map(args.class_map)
    detector = FaceDetector(margin=args.face_margin, min_size=args.min_face) if args.detect_faces else None
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} but CUDA is not available; use --device cpu")
    loaded = load_model(args.model, device=device)
    pred = loaded.predict(
        args.inputs,
        batch_size=args.batch_size,
        device=device,
        detect_faces=detector or False,
        classes=args.classes,
        class_map=class_map,
        embedding=args.embedding,
        tta_flip=args.tta_flip,
        progress=None if not args.no_progress else False,
    )
    for note in pred.notes:
        print(f"tan predict: note: {note}", file=sys.stderr)
    for s in pred.skipped:
        print(f"tan predict: skipped {s.path}: {s.reason}", file=sys.stderr)
    info = {
        "file": str(args.model),
        "sha256": file_sha256(args.model),
        "name": loaded.meta.get("name"),
        "model_classes": loaded.meta["classes"],
        "dataset": loaded.meta.get("dataset", {}).get("name"),
        "transform": loaded.transform.describe(),
    }
    written = write_results(pred, args.out, info)  # also when nothing was predicted: the skipped list
    where = f"; results in {written[0]}" if written else ""
    if pred.skipped and len(written) > 1:
        where += f", skipped inputs in {written[1]}"
    elif pred.skipped and written:
        where += " (skipped inputs in its 'skipped' section)"
    print(f"tan predict: predicted {len(pred.frame)} image(s), skipped {len(pred.skipped)}{where}", file=sys.stderr)
    if not len(pred.frame):
        raise DataError(f"no image could be predicted: {len(pred.skipped)} input(s) skipped, listed above")
    return 0
