"""Is a trained embedding isotropic? docs/isotropy.json and docs/figures/isotropy.png from
finished run directories (docs/method.md, "Is a trained embedding isotropic?").

    python docs/make_isotropy.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a finished run of ``tan sweep``/``tan run`` with its checkpoint ``last.pt``
and test embeddings ``embeddings.npz``, which a run record leaves out (docs/pipeline.md, "Run
records"): they are on the machine that trained the run. The JSON names each run, its
commit (env.json) and the committed record of the same name, so a reader can check that the
run is the record's; ``tanlib.analysis.isotropy`` computes every number.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT = REPO / "docs" / "isotropy.json"
FIGURE = REPO / "docs" / "figures" / "isotropy.png"


def summarise(runs: list[Path]) -> dict:
    from tanlib.analysis.isotropy import run_isotropy
    from tanlib.report.records import data_settings

    rows = []
    for run in runs:
        env = json.loads((run / "env.json").read_text()) if (run / "env.json").is_file() else {}
        records = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "results").rglob(run.name) if p.is_dir())
        noise = data_settings(run).get("label_noise")  # SynthFER's level; None for other data
        rows.append(
            {"run": run.name, "commit": env.get("git_commit"), "records": records, "label_noise": noise}
            | run_isotropy(run)
        )
    return {"about": __doc__.split("\n\n")[0].replace("\n", " "), "runs": rows}


def figure(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [row for row in summary["runs"] if "running_cov" in row]
    levels = sorted({row.get("label_noise") for row in rows}, key=lambda v: (v is None, v or 0.0))
    fig, axes = plt.subplots(
        1, len(levels), figsize=(5.0 * len(levels), 4.0), layout="constrained", sharey=True, squeeze=False
    )
    methods = list(dict.fromkeys(row["method"] for row in rows))
    maps = ["Blues", "Oranges", "Greens", "Purples"]  # one hue per method, a shade per seed (light to dark)
    shrinkage = {row["shrinkage"] for row in rows} - {None}
    for ax, level in zip(axes[0], levels):
        for m, method in enumerate(methods):
            mine = [row for row in rows if row["method"] == method and row.get("label_noise") == level]
            shades = plt.get_cmap(maps[m % len(maps)])(np.linspace(0.45, 0.95, max(len(mine), 1)))
            seeds = ", ".join(str(row["seed"]) for row in mine)
            # one legend entry per method: its seeds, light to dark
            for i, (row, colour) in enumerate(zip(mine, shades)):
                eig = row["running_cov"]["eigenvalues"]
                label = f"{method}, seed{'s' if len(mine) > 1 else ''} {seeds}" if i == 0 else None
                ax.semilogy(range(1, len(eig) + 1), eig, color=colour, label=label)
        ax.axhline(1.0, color="grey", lw=1, ls="--", label="isotropic (every eigenvalue 1)")
        # M = s (S + lambda I)^-1: directions below lambda (in S's mean-1 scale) are floored there
        if len(shrinkage) == 1:
            (value,) = shrinkage
            ax.axhline(value, color="grey", lw=1, ls=":", label=f"shrinkage {value:g}, added to every direction by M")
        ax.set_xlabel("direction (eigenvalues, largest first)")
        ax.set_title("label noise unknown" if level is None else f"{100 * level:g} % label noise", fontsize=10)
        ax.legend(fontsize=7.5, frameon=False, loc="upper right")
    axes[0][0].set_ylabel("variance (mean 1)")
    fig.suptitle("running covariance of the training embeddings (what M inverts)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main(argv=None) -> int:
    from tanlib.report.rundocs import parse_run_dirs

    needs = ("last.pt", "embeddings.npz")
    args = parse_run_dirs(__doc__, argv, OUT, FIGURE, needs, "finished run directories (with last.pt, embeddings.npz)")
    if args is None:
        return 2
    runs = args.runs
    summary = summarise(runs)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    figure(summary, args.figure)
    for row in summary["runs"]:
        within = row["test_within_class"]
        line = f"{row['run']}: test within-class effective rank {within['effective_rank']:.1f} of {within['d']}"
        if "running_cov" in row:
            rc = row["running_cov"]
            line += (
                f"; running covariance effective rank {rc['effective_rank']:.1f}, top {10} directions "
                f"{100 * rc['top_share']:.1f} %; 1-NN {100 * row['loo_1nn_euclidean']:.1f} % Euclidean, "
                f"{100 * row['loo_1nn_mahalanobis']:.1f} % under M; nearest neighbour changed for "
                f"{100 * row['neighbour_changed']:.0f} %"
            )
        else:
            line += f"; 1-NN {100 * row['loo_1nn_euclidean']:.1f} % Euclidean"
        print(line)
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out} and {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
