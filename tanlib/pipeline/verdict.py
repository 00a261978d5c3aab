"""``tan verdict``: the pre-registered claims (``claims.yaml``) judged with seeds added until
each one is decided (docs/results.md, "Seeds until decided").

One round: judge every claim on the records of this verdict at the looks its level has
reached (``tanlib.analysis.verdict``; the looks are the claims file's ``design``,
``tanlib.analysis.sequential``); train every method of the levels with a claim still open up to
the next look, through the sweep machinery (``tanlib.pipeline.sweep.run_sweep``: ``--executor local``
or ``slurm``, ``--shard I/N``; finished runs are skipped, killed ones resume); record each
run into ``<results>/verdict/<dataset>-<preset>/`` as soon as it finishes (``save_record``,
indexed in ``<results>/INDEX.json``), and after the batch the runs other shards finished;
repeat until every claim is decided or the budget (the last look) is spent.
``--plan`` prints the plan and trains nothing.

Provenance: every run of a verdict comes from one clean commit. A run trained from a dirty
tree is refused (``--allow-dirty`` overrides, for tests), and so is a verdict whose
records were trained at another commit than the one checked out. A verdict also holds one
numeric format (its rule never pairs a bf16 run with a float32 one): an ``amp`` setting, a
machine (``amp=auto``, local executor) or a finished run in another format than the records is
refused, the first two before training, the run at recording; ``--arm NAME`` trains them as
another arm, under
``<results>/verdict/<dataset>-<preset>-NAME/``, which docs/make_results.py judges on its own.

The claims are dataset-agnostic: on SynthFER a level is the generator's ``label_noise``;
on RAF-DB (``--dataset rafdb --root data/rafdb``) a level is a list of noisy training
labels (``--noisy-labels 0.1=data/rafdb/EmoLabel/noise_train_10.txt``; the config key
``noisy_train_labels``), 0 the clean labels.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, RunDirError
from ..report.records import VERDICT_FOLDER


def parse_noisy_labels(items: list[str] | None) -> dict[float, str]:
    """``LEVEL=PATH`` items (``--noisy-labels``) to {level: path}."""
    out: dict[float, str] = {}
    for item in items or []:
        level, sep, path = item.partition("=")
        try:
            value = float(level)
        except ValueError:
            value = math.nan
        if not sep or not path or not 0 < value < 1:
            raise ConfigError(f"--noisy-labels {item!r}: expected LEVEL=PATH with 0 < LEVEL < 1, e.g. 0.1=noise_10.txt")
        out[value] = path
    return out


class Verdict:
    """One verdict: its claims, where its runs and records go, and how they are trained."""

    def __init__(
        self,
        claims_file=None,
        dataset: str = "synthfer",
        root: str | None = None,
        preset: str = "calibrated",
        noisy_labels: dict | None = None,
        overrides: dict | None = None,
        synthfer: dict | None = None,
        runs: str = "reports/verdict",
        results: str = "results",
        data_dir: str = "data",
        executor: str = "local",
        slurm: dict | None = None,
        shard: str | None = None,
        allow_dirty: bool = False,
        n_boot: int = 2000,
        arm: str | None = None,
        log=print,
    ):
        from ..analysis.claims import load_claims, load_design
        from ..config import DATASETS, SCALES
        from ..paths import project_path

        if dataset not in DATASETS:
            raise ConfigError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
        if preset not in SCALES:
            raise ConfigError(f"--preset {preset!r}: choose one of {', '.join(SCALES)}")
        if dataset != "synthfer" and not root:
            raise ConfigError(f"--dataset {dataset} needs --root (the dataset folder)")
        if noisy_labels and dataset != "rafdb":
            raise ConfigError("--noisy-labels is RAF-DB's noisy-label protocol: it needs --dataset rafdb")
        self.claims = load_claims(claims_file)
        self.design = load_design(claims_file)  # the looks: the claims file's design
        self.dataset, self.root, self.preset = dataset, root, preset
        self.noisy_labels = dict(noisy_labels or {})
        self.overrides = dict(overrides or {})
        self.synthfer = dict(synthfer or {})
        if arm is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.]*", arm):
            raise ConfigError(f"--arm {arm!r}: expected a short name of letters, digits, '_' or '.' (e.g. float32)")
        self.arm = arm
        folder = f"{dataset}-{preset}" + (f"-{arm}" if arm else "")  # an arm: judged on its own (docs/results.md)
        self.name = f"verdict-{folder}"
        self.written: list[Path] = []  # the records this object wrote (record_run)
        self._formats: set | None = None  # the records' numeric formats (record_formats)
        self.runs = project_path(runs)
        self.results = project_path(results)
        self.records = self.results / VERDICT_FOLDER / folder  # records.in_verdict_folder
        self.data_dir = data_dir
        self.executor, self.slurm, self.shard = executor, dict(slurm or {}), shard
        self.allow_dirty, self.n_boot = allow_dirty, n_boot
        self.log = log
        levels = sorted({lv for c in self.claims for lv in c.levels})
        if dataset == "rafdb":
            missing = [lv for lv in levels if lv > 0 and lv not in self.noisy_labels]
            if missing:
                raise ConfigError(
                    f"the claims are judged at label noise {', '.join(f'{lv:g}' for lv in missing)}: give each level "
                    "its list of noisy training labels, --noisy-labels LEVEL=PATH (e.g. 0.1=data/rafdb/EmoLabel/"
                    "noise_train_10.txt)"
                )
        elif dataset != "synthfer":
            levels = [0.0]  # no label-noise protocol: the claims at 0 only
        self.levels = levels

    # ------------------------------------------------------------------ records
    def record_frame(self) -> pd.DataFrame | None:
        """The records of this verdict, with the label-noise level of each (``synth_label_noise``)."""
        from ..analysis.verdict import NOISE_COLUMN
        from ..report.records import collect_records

        if not self.records.is_dir() or not any(self.records.iterdir()):
            return None
        frame = collect_records([self.records])
        if self.dataset != "synthfer":
            by_path = {str(Path(p)): lv for lv, p in self.noisy_labels.items()}
            column = frame["noisy_train_labels"] if "noisy_train_labels" in frame else pd.Series([None] * len(frame))
            frame[NOISE_COLUMN] = [
                0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else by_path.get(str(Path(v)), math.nan)
                for v in column
            ]
        return frame

    def commit_check(self, plan_only: bool = False) -> str | None:
        """The commit of this verdict's records (None without records); ``RunDirError`` when
        they come from more than one commit, from a dirty tree (unless ``allow_dirty``), or
        from another commit than the one checked out (``plan_only``: a note, since a plan trains
        nothing; the tree's analysis judges the records)."""
        from ..report.records import read_index

        index = read_index(self.results, missing_ok=True)["records"]
        prefix = self.records.relative_to(self.results).as_posix() + "/"
        entries = {k: e for k, e in index.items() if k.startswith(prefix)}
        if not entries:
            return None
        commits = {e["commit"] for e in entries.values()}
        if len(commits) > 1:
            raise RunDirError(f"the records under {self.records} come from {len(commits)} commits: {sorted(commits)}")
        dirty = sorted(k for k, e in entries.items() if e["clean"] is False)
        if dirty and not self.allow_dirty:
            raise RunDirError(f"records from a dirty tree in this verdict: {', '.join(dirty)}")
        (commit,) = commits
        from ..engine.rundir import git_state

        head, _ = git_state()
        if head is not None and commit is not None and head != commit and plan_only:
            self.log(
                f"note: the records under {self.records} were trained at commit {commit[:12]} and are judged here "
                f"by the analysis of {head[:12]}; to train the plan, check out {commit[:12]} (a verdict's runs "
                "come from one commit)"
            )
        elif head is not None and commit is not None and head != commit:
            raise RunDirError(
                f"the records under {self.records} were trained at commit {commit[:12]}, the tree is at {head[:12]}: "
                "a verdict's runs come from one commit. Check that commit out to add seeds, or start a new verdict "
                "(another --results folder)"
            )
        return commit

    def record_formats(self) -> list[str]:
        """The numeric formats (``precision_name``: bf16, fp32) of this verdict's records, read once
        per batch (``run_batch`` forgets them; ``record_run`` adds what it records)."""
        from ..analysis.verdict import precisions
        from ..engine.precision import precision_name

        if self._formats is None:
            frame = self.record_frame()
            self._formats = set() if frame is None else {precision_name(p) for p in precisions(frame)}
        return sorted(self._formats)

    def machine_format(self) -> str:
        """The numeric format this machine trains the verdict's runs in (the preset's ``amp`` and
        ``device`` with the overrides, resolved as training resolves them)."""
        from ..config import preset
        from ..engine.precision import precision_name, resolve_amp
        from ..engine.train import resolve_device

        config = preset("ce", self.preset, **self.overrides)
        return precision_name(resolve_amp(config.amp, resolve_device(config)))

    def configured_format(self) -> str | None:
        """The numeric format the verdict's runs train in wherever they run (``amp`` set to bf16 or
        none), or None where ``amp=auto`` leaves it to each machine."""
        from ..config import preset
        from ..engine.precision import precision_name

        amp = preset("ce", self.preset, **self.overrides).amp
        return None if amp == "auto" else precision_name(amp)

    def check_format(self, fmt: str, what: str, run: Path | None = None) -> None:
        """``RunDirError`` when ``what`` (this machine, or the finished ``run``) is in another numeric
        format than this verdict's records: the rule never pairs two formats, so a verdict holds one,
        and another format's runs are another arm (``--arm``), judged on its own."""
        formats = self.record_formats()
        if not formats or fmt in formats:
            return
        name = ARM_NAMES.get(fmt, fmt)
        arm = f"{VERDICT_FOLDER}/{self.dataset}-{self.preset}-{name}"
        text = (
            f"{what} trains in {fmt}, the records under {self.records} are {', '.join(formats)}: a verdict holds "
            f"one numeric format (its rule never pairs two). Train another format as another arm, judged on its "
            f"own: add --arm {name} (records under {arm}/), or set amp and device to match (--set amp=...)"
        )
        if run is not None:
            runs = self.runs / f"verdict-{self.dataset}-{self.preset}-{name}" / "runs"
            text += (
                f". {Path(run).name} is not recorded: move {run} into {runs}/ and rerun with --arm {name}, which "
                "records it without training it again"
            )
        raise RunDirError(text)

    # ------------------------------------------------------------------ judging and planning
    def judge(self) -> list[dict]:
        from ..analysis.verdict import claim_results

        frame = self.record_frame()
        if frame is None:
            return []
        difficulty = {}
        if self.dataset == "synthfer":
            from ..analysis.difficulty import claim_baseline

            difficulty = claim_baseline(frame)
        return claim_results(frame, self.claims, difficulty=difficulty, n_boot=self.n_boot, design=self.design)

    def seeds_done(self, levels=None) -> int:
        """Seeds 0..n-1 complete at every level of ``levels`` (default: every level of the claims),
        by the rule that says when a look is reached (``tanlib.analysis.verdict.complete_seeds``)."""
        frame = self.record_frame()
        if frame is None:
            return 0
        from ..analysis.verdict import NOISE_COLUMN, complete_seeds

        levels = [lv for lv in self.levels if levels is None or lv in levels]
        return min(
            (
                complete_seeds(frame[frame[NOISE_COLUMN] == lv], [c for c in self.claims if lv in c.levels])
                for lv in levels
            ),
            default=0,
        )

    def plan(self, results: list[dict] | None = None) -> dict:
        """The next round: {"seeds": total seeds to reach, "claims": per claim and level
        (status, seeds, look, seeds to decide), "methods", "levels"}. A level is open while one
        of its claims is; every method of an open level's claims is trained up to the next look
        (the looks are fixed in advance: tanlib.analysis.sequential), so that the look is reached
        for every claim of the level on the same seeds."""
        results = self.judge() if results is None else results
        judged = {(r["claim"].key, r["level"]): r for r in results}
        complete = {lv: min([r["complete"] for r in results if r["level"] == lv] or [0]) for lv in self.levels}
        reached = {lv: self.design.look_size(n) or 0 for lv, n in complete.items()}
        rows, open_levels = [], set()
        for claim in self.claims:
            for level in claim.levels:
                if level not in self.levels:
                    continue
                r = judged.get((claim.key, level))
                verdict = r["verdict"] if r else "no runs"
                if verdict in ("supported", "contradicted", "equivalent"):
                    status = "decided"
                elif r is not None and r["did_not_learn"]:
                    status = "a run did not learn"
                elif self.design.next_look(reached[level]) is None:
                    status = "budget spent"
                else:
                    status = "open"
                    open_levels.add(level)
                n_need, within = (None, False) if r is None else r["seeds_needed"]
                rows.append(
                    {
                        "claim": claim.key,
                        "family": claim.family,
                        "level": level,
                        "verdict": verdict,
                        "seeds": 0 if r is None or r["diff"] is None else len(r["diff"].seeds),
                        "look": "n/a" if r is None or r["look"] is None else r["look"],
                        "seeds to decide": n_need if within else ("n/a" if n_need is None else f">= {n_need}"),
                        "status": status,
                    }
                )
        frame = self.record_frame() if open_levels else None
        done = min([self._every_method(lv, frame) for lv in open_levels] or [min(complete.values(), default=0)])
        targets = [self.design.next_look(reached[lv]) for lv in open_levels]
        seeds = min(targets) if targets else done
        methods = sorted({m for c in self.claims for m in c.methods if set(c.levels) & open_levels})
        return {
            "seeds_done": done,
            "seeds": seeds,
            "claims": rows,
            "methods": methods,
            "levels": sorted(open_levels),
            "missing": self.missing_runs(methods, range(done, seeds), sorted(open_levels)),
        }

    def _every_method(self, level, frame: pd.DataFrame | None) -> int:
        """The seeds 0..n-1 that every method of ``level``'s claims has a record for, those without
        any run included (the look's rule, ``complete_seeds``, counts the methods with runs): a
        batch starts there, so a method not yet run at a level gets its first seeds too. ``frame``:
        ``record_frame()``, read once per plan."""
        from ..analysis.verdict import NOISE_COLUMN

        part = frame[frame[NOISE_COLUMN] == level] if frame is not None else None
        have = set() if part is None else set(zip(part["method"], part["seed"].astype(int)))
        methods = {m for c in self.claims if level in c.levels for m in c.methods}
        n = 0
        while methods and all((m, n) in have for m in methods):
            n += 1
        return n

    def missing_runs(self, methods, seeds, levels) -> list[tuple[str, int, float]]:
        """The (method, seed, level) of the batch without a record yet: a batch spans seeds
        done..next look for every method, and some of them may be recorded already."""
        from ..analysis.verdict import NOISE_COLUMN

        frame = self.record_frame()
        have = set() if frame is None else set(zip(frame["method"], frame["seed"].astype(int), frame[NOISE_COLUMN]))
        return [(m, s, lv) for lv in levels for m in methods for s in seeds if (m, s, lv) not in have]

    def describe(self, plan: dict) -> str:
        from ..report.tables import to_markdown

        head = (
            f"tan verdict: {self.dataset} at the {self.preset} preset, {len(self.claims)} claims; records "
            f"{self.records}; seeds recorded 0..{plan['seeds_done'] - 1 if plan['seeds_done'] else '-'}, "
            f"looks at {', '.join(map(str, self.design.looks()))} seeds (claims file's design)"
        )
        if plan["seeds"] > plan["seeds_done"]:
            nxt = (
                f"next: seeds {plan['seeds_done']}..{plan['seeds'] - 1} of {', '.join(plan['methods'])} at label "
                f"noise {', '.join(f'{lv:g}' for lv in plan['levels'])} ({self._count(plan)})"
            )
        else:
            nxt = "nothing to train: every claim is decided or its budget is spent"
        return "\n".join([head, to_markdown(pd.DataFrame(plan["claims"])), nxt])

    @staticmethod
    def _count(plan: dict) -> str:
        total = (plan["seeds"] - plan["seeds_done"]) * len(plan["methods"]) * len(plan["levels"])
        todo = len(plan["missing"])
        runs = f"{todo} run{'s' if todo != 1 else ''}"
        return runs if todo == total else f"{runs} to train; {total - todo} of the {total} are recorded"

    # ------------------------------------------------------------------ running
    def grid(self, plan: dict) -> dict:
        """The sweep grid of the next batch (``tanlib.pipeline.sweep.load_grid``'s format)."""
        grid = {
            "name": self.name,
            "preset": self.preset,
            "dataset": self.dataset,
            "methods": plan["methods"],
            "seeds": list(range(plan["seeds_done"], plan["seeds"])),
            "parameters": {k: [v] for k, v in self.overrides.items()},
            "data_dir": self.data_dir,
        }
        if self.root:
            grid["root"] = self.root
        if self.dataset == "synthfer":
            grid["synthfer"] = {"label_noise": plan["levels"], **{k: [v] for k, v in self.synthfer.items()}}
        elif self.dataset == "rafdb":
            grid["parameters"]["noisy_train_labels"] = [
                None if lv == 0 else self.noisy_labels[lv] for lv in plan["levels"]
            ]
        return grid

    def run_batch(self, plan: dict) -> list[Path]:
        """Train the batch through ``run_sweep``, recording each run as it finishes, then the runs other
        shards or processes finished meanwhile; returns the records this call wrote."""
        import yaml

        from .sweep import run_sweep

        folder = self.runs / self.name
        folder.mkdir(parents=True, exist_ok=True)
        self.written, self._formats = [], None
        grid_file = folder / f"grid-seeds-{plan['seeds_done']}-{plan['seeds'] - 1}.yaml"
        grid_file.write_text(yaml.safe_dump(self.grid(plan), sort_keys=False))
        run_sweep(
            grid_file,
            out=str(self.runs),
            shard=self.shard,
            report=False,
            log=self.log,
            executor=self.executor,
            slurm=self.slurm or None,
            on_finished=self.record_run,
            records=self.records,  # a recorded run is not trained again, wherever its run directory went
        )
        self.record_finished(folder / "runs")  # the runs other shards or processes finished meanwhile
        return self.written

    def record_run(self, run: Path) -> Path | None:
        """Record one finished run into this verdict's records, once (``save_record``)."""
        from ..engine.precision import precision_name
        from ..report.records import INDEX_NAME, read_record_json, save_record

        fmt = precision_name(read_record_json(Path(run) / "metrics.json").get("amp") or "none")
        self.check_format(fmt, f"run {Path(run).name}", run)
        target = save_record(
            run, self.records, index=self.results / INDEX_NAME, allow_dirty=self.allow_dirty, once=True
        )
        if self._formats is not None:
            self._formats.add(fmt)
        if target is not None:
            self.written.append(target)
            self.log(f"[verdict] recorded {run.name}")
        return target

    def record_finished(self, runs_dir: Path) -> None:
        from ..engine.rundir import run_is_complete

        for run in sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []:
            if run_is_complete(run):
                self.record_run(run)

    def run(self, plan_only: bool = False) -> dict:
        """Rounds of judge, plan, train and record until nothing is open (one round with
        ``--shard``: the other shards train the rest). Returns the last plan."""
        from ..engine.rundir import require_clean_tree

        if not plan_only and not self.allow_dirty:
            require_clean_tree(
                "a verdict's runs come from one clean commit. Commit first (or pass --allow-dirty for a test)"
            )
        self.commit_check(plan_only)
        if not plan_only:  # before any training; record_run checks each run where the nodes decide (amp=auto)
            fmt = self.configured_format()
            if fmt is not None:
                self.check_format(fmt, "the verdict's amp setting")
            elif self.executor == "local":
                self.check_format(self.machine_format(), "this machine")
        while True:
            plan = self.plan()
            self.log(self.describe(plan))
            if plan_only or plan["seeds"] <= plan["seeds_done"]:
                return plan
            before = plan["seeds_done"]
            self.run_batch(plan)
            self.commit_check()
            if self.shard or self.seeds_done(plan["levels"]) <= before:
                return self.plan()


#: The arm a numeric format's runs go to when the verdict's records hold another (``--arm``):
#: the H200's float32 runs are ``results/verdict/synthfer-calibrated-float32/``.
ARM_NAMES = {"fp32": "float32", "bf16": "bf16"}


def _command(args) -> int:
    from ..config import parse_set
    from ..executors import parse_slurm_items

    verdict = Verdict(
        claims_file=args.claims,
        dataset=args.dataset,
        root=args.root,
        preset=args.preset,
        noisy_labels=parse_noisy_labels(args.noisy_labels),
        overrides=parse_set(args.set),
        synthfer=parse_set(args.synth) if args.synth else {},
        runs=args.runs,
        results=args.results,
        data_dir=args.data_dir,
        executor=args.executor,
        slurm=parse_slurm_items(args.slurm),
        shard=args.shard,
        allow_dirty=args.allow_dirty,
        arm=args.arm,
    )
    plan = verdict.run(plan_only=args.plan)
    if args.json:
        Path(args.json).write_text(json.dumps(plan, indent=2, default=str) + "\n")
    return 0


def register(subparsers) -> None:
    from ..config import DATASETS, SCALES
    from ..executors import EXECUTORS, SLURM_KEYS

    p = subparsers.add_parser(
        "verdict",
        help="judge claims.yaml, adding seeds until each claim is decided or the budget is spent",
        description="Judge the pre-registered claims (claims.yaml) on this verdict's records at their looks (the "
        "claims file's 'design'), train the methods of the levels with an open claim up to the next look through "
        "the sweep executors, record them (results/verdict/<dataset>-<preset>/) and repeat until every claim is "
        "decided or the budget is spent. --plan prints the plan and trains nothing. docs/results.md, 'Seeds "
        "until decided'.",
    )
    p.add_argument(
        "--claims",
        default=None,
        help="the claims file and its design, the looks (default: claims.yaml at the project root)",
    )
    p.add_argument("--dataset", default="synthfer", choices=DATASETS)
    p.add_argument("--root", default=None, help="dataset folder (rafdb, ferplus, folder; synthfer: generated)")
    p.add_argument("--preset", default="calibrated", choices=SCALES, help="scale preset (default: calibrated)")
    p.add_argument(
        "--noisy-labels",
        action="append",
        metavar="LEVEL=PATH",
        help="rafdb: the noisy training label list of a label-noise level of the claims, e.g. "
        "0.1=data/rafdb/EmoLabel/noise_train_10.txt; repeatable (level 0: the clean labels)",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config key for every run")
    p.add_argument("--synth", action="append", metavar="KEY=VALUE", help="SynthFER generator setting for every level")
    p.add_argument("--plan", action="store_true", help="print the plan (seeds per claim) and train nothing")
    p.add_argument("--runs", default="reports/verdict", help="folder of the verdict's run directories")
    p.add_argument("--results", default="results", help="records root (its INDEX.json; records under verdict/)")
    p.add_argument("--data-dir", default="data", help="where SynthFER levels are generated (default data)")
    p.add_argument("--executor", default="local", choices=EXECUTORS, help="as tan sweep (local or slurm)")
    p.add_argument("--slurm", action="append", metavar="KEY=VALUE", help=f"SLURM option: {', '.join(SLURM_KEYS)}")
    p.add_argument("--shard", default=None, metavar="I/N", help="train every N-th job of the batch, one round")
    p.add_argument("--allow-dirty", action="store_true", help="train and record from a dirty tree (tests only)")
    p.add_argument(
        "--arm",
        default=None,
        help="another arm of the verdict, judged on its own: records under results/verdict/<dataset>-<preset>-ARM/ "
        "(e.g. float32 on a GPU, where the main folder holds bf16 runs; a verdict holds one numeric format)",
    )
    p.add_argument("--json", default=None, metavar="FILE", help="write the last plan as JSON")
    p.set_defaults(func=_command)


__all__ = ["Verdict", "parse_noisy_labels", "register"]
