"""Is the attention a logit scale? docs/attention_scale.json and docs/figures/attention_scale.png
from finished run directories (docs/method.md, "What the attention learns instead of the wrong labels").

    python docs/make_attention_scale.py RUN_DIR [RUN_DIR ...]
    python docs/make_attention_scale.py --redraw    # the figure again, from the committed JSON

Each RUN_DIR is a finished run of ``tan sweep``/``tan run`` of a method with attention, on
SynthFER (whose manifest knows the clean labels), with the checkpoint its records read, which a
run record leaves out (docs/pipeline.md, "Run records"): they are on the machine that trained
the run. The JSON names each run, its commit (env.json) and the committed record of the same
name, whose ``noise_detection`` AUC the row's ``auc_attention`` equals;
``tanlib.analysis.attention_scale`` computes every number.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT = REPO / "docs" / "attention_scale.json"
FIGURE = REPO / "docs" / "figures" / "attention_scale.png"
#: faces of each kind (right, wrong label) kept in the JSON for the scatter panel
SCATTER = 1000


def summarise(runs: list[Path]) -> dict:
    """The JSON's content: a row per run, and ``scatter``: ``SCATTER`` faces of each kind (right,
    wrong label; a seeded draw) of the first run of the highest label-noise level, for the figure."""
    import numpy as np

    from tanlib.analysis.attention_scale import scale_diagnostics, training_predictions
    from tanlib.config import Config
    from tanlib.report.records import data_settings

    rows, scatter = [], None
    for run in runs:
        env = json.loads((run / "env.json").read_text()) if (run / "env.json").is_file() else {}
        records = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "results").rglob(run.name) if p.is_dir())
        config = Config.load(run / "config.json")
        pred, train = training_predictions(run)
        given, clean = train["label"].to_numpy(), train["clean_label"].to_numpy()
        row = {
            "run": run.name,
            "commit": env.get("git_commit"),
            "records": records,
            "label_noise": data_settings(run).get("label_noise"),
            "method": config.method,
            "seed": config.seed,
        } | scale_diagnostics(pred["attention"], pred["logits"], given, clean)
        rows.append(row)
        if scatter is None or (row["label_noise"] or 0) > (scatter["label_noise"] or 0):
            rng, wrong = np.random.default_rng(0), given != clean
            pick = np.sort(
                np.concatenate([rng.permutation(np.flatnonzero(wrong == w))[:SCATTER] for w in (False, True)])
            )
            scatter = {k: row[k] for k in ("run", "method", "seed", "label_noise", "r_log_norm")} | {
                "logit_norm": np.round(np.linalg.norm(pred["logits"][pick], axis=1), 4).tolist(),
                "attention": np.round(pred["attention"][pick], 4).tolist(),
                "wrong": wrong[pick].tolist(),
            }
    about = __doc__.split("\n\n")[0].replace("\n", " ")
    return {"about": about, "runs": rows, "scatter": scatter}


def dumps(summary: dict) -> str:
    """The JSON's text: indented, but the scatter's faces (three long lists) one line each."""
    text = json.dumps(summary | {"scatter": None}, indent=2)
    lists = summary["scatter"]
    scatter = "{\n" + ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in lists.items()) + "\n  }"
    return text.replace('"scatter": null', f'"scatter": {scatter}') + "\n"


def figure(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import LogLocator, ScalarFormatter

    from tanlib.config import METHODS

    fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 4.2), layout="constrained")
    faces = summary["scatter"]
    wrong = np.asarray(faces["wrong"])
    for is_wrong, colour, name in ((False, "tab:blue", "right label"), (True, "tab:orange", "wrong label")):
        mask = wrong == is_wrong
        norm, attention = np.asarray(faces["logit_norm"])[mask], np.asarray(faces["attention"])[mask]
        left.scatter(norm, attention, s=4, alpha=0.35, color=colour, lw=0, label=name)
    left.set_xscale("log")
    left.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    left.xaxis.set_major_formatter(ScalarFormatter())
    left.xaxis.set_minor_formatter(plt.NullFormatter())
    left.set_xlabel("logit norm ||z|| of the training face (log scale)")
    left.set_ylabel("attention a")
    level = faces["label_noise"]
    left.set_title(
        f"{faces['method']}, seed {faces['seed']}"
        + ("" if level is None else f", {100 * level:g} % wrong labels")
        + f": r(a, log ||z||) = {faces['r_log_norm']:.2f}",
        fontsize=9,
    )
    left.legend(fontsize=8, frameon=False, markerscale=3, loc="upper right")

    rows = summary["runs"]
    order = {m: i for i, m in enumerate(METHODS)}
    groups = sorted({(r["method"], r["label_noise"]) for r in rows}, key=lambda g: (g[1] or 0, order.get(g[0], 99)))
    measures = (
        ("auc_attention", "attention (as the claim reads it)", "tab:red", "o"),
        ("auc_residual", "attention's residual after regressing on log ||z||", "tab:green", "s"),
        ("auc_low_norm", "small logit norm (label-blind)", "tab:grey", "^"),
    )
    for k, (key, name, colour, marker) in enumerate(measures):
        for g, (method, noise) in enumerate(groups):
            values = [r[key] for r in rows if (r["method"], r["label_noise"]) == (method, noise)]
            x = g + (k - 1) * 0.22 + np.linspace(-0.05, 0.05, len(values))
            right.scatter(x, values, color=colour, marker=marker, s=18, label=name if g == 0 else None)
    right.axhline(0.5, color="black", lw=0.8, ls="--")
    right.text(len(groups) - 0.45, 0.5, "chance ", va="bottom", ha="right", fontsize=8)
    right.set_xticks(range(len(groups)))
    right.set_xticklabels([f"{m}\n{'?' if n is None else f'{100 * n:g} %'}" for m, n in groups], fontsize=8)
    right.set_xlim(-0.6, len(groups) - 0.4)
    right.set_ylabel("AUC for the wrong labels (low score suspect)")
    right.set_title("per run: the attention, its part beyond the scale, the scale alone", fontsize=9)
    values = [r[key] for r in rows for key, *_ in measures] + [0.5]
    low, high = min(values), max(values)
    right.set_ylim(low - 0.05 * (high - low), high + 0.3 * (high - low))  # room for the legend above the points
    right.legend(fontsize=7.5, frameon=False, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main(argv=None) -> int:
    from tanlib.config import Config
    from tanlib.errors import TANError
    from tanlib.report.rundocs import parse_run_dirs

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--redraw"]:  # the figure reads the JSON alone
        import argparse

        parser = argparse.ArgumentParser(description="redraw the figure from the JSON")
        parser.add_argument("--redraw", action="store_true")
        parser.add_argument("--out", type=Path, default=OUT, help="the JSON to read")
        parser.add_argument("--figure", type=Path, default=FIGURE)
        args = parser.parse_args(argv)
        if not args.out.is_file():
            print(f"error: {args.out}: no such file (write it from run directories first)", file=sys.stderr)
            return 2
        figure(json.loads(args.out.read_text()), args.figure)
        print(f"redrew {args.figure} from {args.out}")
        return 0
    needs = ("config.json", "manifest.csv", "metrics.json")
    args = parse_run_dirs(__doc__, argv, OUT, FIGURE, needs, "finished run directories of methods with attention")
    if args is None:
        return 2
    runs = args.runs

    plain = [r for r in runs if not Config.load(r / "config.json").attention]
    if plain:
        print(
            "error: these runs trained a method without attention:\n  " + "\n  ".join(map(str, plain)), file=sys.stderr
        )
        return 2
    try:
        summary = summarise(runs)
    except TANError as exc:  # a run without SynthFER's clean labels, or without its checkpoint
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(dumps(summary))
    figure(summary, args.figure)
    for row in summary["runs"]:
        print(
            f"{row['run']}: AUC attention {row['auc_attention']:.3f}, off the scale {row['auc_residual']:.3f}, "
            f"small logit norm {row['auc_low_norm']:.3f}; r(a, log ||z||) {row['r_log_norm']:.2f}"
        )
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out} and {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
