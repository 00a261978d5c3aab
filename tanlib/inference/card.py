"""The model card: a Markdown page written beside every export (``<file stem>.md``).

It is generated from the export's metadata alone, so it says exactly what the file
holds: what the model was trained on (dataset, root, protocol, split sizes), the test
numbers with the protocol and the epoch-selection rule they come from, the classes in
order, the preprocessing, how to use the file, its SHA-256 and provenance, and its known
limits (a SynthFER model is not a facial expression model of real faces).
"""

from __future__ import annotations


def _pct(value) -> str:
    try:
        return f"{100 * float(value):.2f} %"
    except (TypeError, ValueError):
        return "n/a"


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def limits(meta: dict) -> list[str]:
    """The known limits of a model, from its metadata."""
    dataset = meta.get("dataset", {}).get("name")
    size = meta["transform"]["size"][0]
    out = []
    if dataset == "synthfer":
        out.append(
            "**Trained on SynthFER, the kit's synthetic faces. This is not a facial expression model of "
            "real faces**, and its numbers are not RAF-DB or FERPlus numbers: use it to test the "
            "pipeline, the export and the tools, not to recognise expressions."
        )
    out += [
        f"Inputs are expected to look like the training images: one face, cropped and roughly aligned as in "
        f"the training set, resized to {size} x {size} px without keeping the aspect ratio. "
        "`tan predict --detect-faces` finds and crops faces with OpenCV's Haar cascade, which misses "
        "profile, small, occluded or rotated faces.",
        f"The output is one of the {meta['num_classes']} classes below, in that order; a model trained on "
        "another label set (RAF-DB's 7 classes vs FERPlus's 8) needs `--classes` / `--class-map` to compare "
        "with it, and a class it never saw cannot be predicted.",
        "The attention weight is the network's learned per-sample weight (SCN-style): low values flag faces "
        "the model treats as uncertain or mislabelled. It is not a calibrated probability.",
        "The test numbers come from one test split of one training run (one seed); they carry the "
        "variance of a single run and hold only for images like that test split.",
    ]
    if dataset in ("rafdb", "ferplus"):
        out.append(
            "Public FER datasets are collected from the web and are not balanced across age, gender "
            "or ethnicity; this card reports no per-group audit beyond the subgroup columns of the "
            "dataset, if any."
        )
    return out


def model_card(meta: dict, file_name: str, sha256: str) -> str:
    """The Markdown model card of an export."""
    arch, data, ckpt, mets = meta["architecture"], meta["dataset"], meta["checkpoint"], meta["metrics"]
    cfg, tr, prov = meta["config"], meta["transform"], meta.get("provenance", {})
    export = meta.get("export", {})
    fmt = export.get("format", "torch")
    name = meta.get("name", file_name)
    attention = "with the attention head" if arch["attention"] else "without attention (weights all 1)"
    lines = [
        f"# Model card: {name}",
        "",
        f"TANNet ({arch['backbone']} backbone, {attention}, {arch['embedding_dim'] or arch['feature_dim']}-d "
        f"embedding) for facial expression recognition: method `{cfg['method']}` trained on "
        f"**{data['name']}** (`{data['root']}`, protocol `{data['protocol']}`), {meta['num_params']:,} parameters.",
        "",
        "## File",
        "",
        _table([(f"`{file_name}`", fmt, f"`{sha256}`")], ("file", "format", "SHA-256")),
        "",
        "The name carries the first 8 hex digits of the SHA-256; `tanlib.inference.load_model` checks them "
        "and the SHA-256 of the tensors recorded in the metadata (`state_dict_sha256` "
        f"`{meta['state_dict_sha256'][:16]}...`).",
        "",
        "## Known limits",
        "",
        *[f"- {item}" for item in limits(meta)],
        "",
        "## Classes",
        "",
        _table([(i, c) for i, c in enumerate(meta["classes"])], ("index", "class")),
        "",
        "## Preprocessing",
        "",
        tr["rule"] + ".",
        "",
        "## Training",
        "",
        _table(
            [
                ("dataset", f"{data['name']} at `{data['root']}`, protocol `{data['protocol']}`"),
                (
                    "images (train / val / test)",
                    " / ".join(str(data["splits"].get(s, 0)) for s in ("train", "val", "test")),
                ),
                ("method, scale, seed", f"`{cfg['method']}`, `{cfg['scale']}`, {cfg['seed']}"),
                ("backbone init", f"`{cfg['pretrained']}`"),
                ("image size", f"{cfg['image_size']} px"),
                ("epochs", f"{ckpt['epoch']} of {cfg['epochs']} (checkpoint `{ckpt['which']}`)"),
                (
                    "optimiser",
                    f"{cfg['optimizer']}, lr {cfg['lr']:g}, weight decay {cfg['weight_decay']:g}, "
                    f"batch {cfg['batch_size']}, scheduler {cfg['scheduler']}",
                ),
            ],
            ("item", "value"),
        ),
        "",
        "The full config is in the metadata (`meta['config']`).",
        "",
        "## Evaluation",
        "",
        f"{mets['protocol']}.",
        "",
        _table(
            [
                ("accuracy", _pct(mets["accuracy"])),
                ("mean class accuracy", _pct(mets["mean_class_accuracy"])),
                ("macro F1", _pct(mets["macro_f1"])),
                ("test images", mets["n"]),
            ],
            ("metric", "value"),
        ),
        "",
    ]
    recall = mets.get("per_class_recall") or {}
    if recall:
        lines += [_table([(c, _pct(recall.get(c))) for c in meta["classes"]], ("class", "recall")), ""]
    sel = mets.get("test_selected")
    if sel:
        lines += [
            f"For comparison with papers only: the best test accuracy of any epoch was "
            f"{_pct(sel.get('accuracy'))} (epoch {sel.get('epoch')}; test-selected, not a fair estimate).",
            "",
        ]
    lines += [
        "## How to use",
        "",
        "```bash",
        f"tan predict --model {file_name} face.jpg faces/ --out results.csv",
        "```",
        "",
        "```python",
        "from tanlib.inference import load_model",
        f'model, transform, meta = load_model("{file_name}")',
        'probs = model(transform("face.jpg")[None]).logits.softmax(1)   # classes: meta["classes"]',
        "```",
        "",
        "## Provenance",
        "",
        _table(
            [
                ("run directory", f"`{prov.get('run_dir')}` (`{ckpt['source']}`)"),
                (
                    "git commit",
                    f"`{prov.get('git_commit')}`" + (" (uncommitted changes)" if prov.get("git_dirty") else ""),
                ),
                ("trained with", f"torch {prov.get('torch')}, torchvision {prov.get('torchvision')}"),
                ("exported with", f"tanlib {export.get('tanlib')}, torch {export.get('torch')}"),
            ],
            ("item", "value"),
        ),
        "",
    ]
    return "\n".join(lines)


__all__ = ["model_card", "limits"]
