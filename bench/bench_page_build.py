"""Benchmark 11: the results page's build, with and without the readers' settled-file caches.

``python docs/make_results.py`` checks every record against ``results/INDEX.json`` about 18
times in one build and reads each test predictions file dozens of times. The record readers
(``tanlib.report.records``: ``_sha256``, ``check_record``, ``read_record_csv``;
``tanlib.analysis.verdict.learning_check``) hash, check and parse a *settled* file once per
process (``settled_key``: status unchanged for ``SETTLED_S`` seconds). Variants, each in a
fresh process (the caches live in one), interleaved per round:

- ``cached``: the kit as it is;
- ``uncached``: ``SETTLED_S`` set to infinity, so no file is ever settled and every read
  reads, hashes and parses again (what the readers did before the caches).

Measured per variant: ``verify``, 18 checks of the whole index (``verify_index``) as a build
makes them, and ``build``, the page's full build (``build(write_figures=False)``, what
``--check`` compares), each timed inside the process (imports excluded). Both builds must
give the same page (asserted). ``--tiny`` times ``verify`` only, 3 checks of one records
group (the tests run it). Only the ratios count (bench/common.py).

Usage: ``python bench/bench_page_build.py [--rounds 2] [--tiny]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import ratios, summary, write_result  # noqa: E402

CHILD = """
import hashlib, importlib.util, json, math, sys, time
sys.path.insert(0, {repo!r})
from tanlib.report import records
if {uncached}:
    records.SETTLED_S = math.inf
root, under, checks, build = {repo!r} + "/results", {under!r}, {checks}, {build}
t = time.perf_counter()
for _ in range(checks):
    records.verify_index(root, under=under)
out = {{"verify": time.perf_counter() - t}}
if build:
    spec = importlib.util.spec_from_file_location("make_results", {repo!r} + "/docs/make_results.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    t = time.perf_counter()
    page, block = gen.build(write_figures=False)[:2]
    out["build"] = time.perf_counter() - t
    out["page_sha256"] = hashlib.sha256((page + block).encode()).hexdigest()
print(json.dumps(out))
"""


def child(variant: str, under: Path, checks: int, build: bool) -> dict:
    code = CHILD.format(repo=str(REPO), uncached=variant == "uncached", under=str(under), checks=checks, build=build)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(f"{variant}: the child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--checks", type=int, default=18, help="index checks per process (a page build makes about 18)")
    ap.add_argument("--tiny", action="store_true", help="3 checks of results/recipe, no build (the tests)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    root, build = REPO / "results", True
    if args.tiny:
        root, build, args.rounds, args.checks = REPO / "results" / "recipe", False, 1, 3
    runs: dict[str, list[dict]] = {"cached": [], "uncached": []}
    for _ in range(args.rounds):
        for variant in runs:
            runs[variant].append(child(variant, root, args.checks, build))
    measures = ["verify"] + (["build"] if build else [])
    if build:
        pages = {r["page_sha256"] for rs in runs.values() for r in rs}
        if len(pages) != 1:
            raise SystemExit("the cached and uncached builds gave different pages")

    def times(variant, m):
        return [r[m] for r in runs[variant]]

    results = {
        m: {
            "seconds": {v: summary(times(v, m)) for v in runs},
            "uncached_over_cached": summary(ratios(times("uncached", m), times("cached", m)), 2),
        }
        for m in measures
    }
    results["records"] = len(json.loads((REPO / "results" / "INDEX.json").read_text())["records"])
    results["same_page"] = build
    for m in measures:
        s = results[m]["seconds"]
        print(f"{m}: cached {s['cached']['median']:.2f} s, uncached {s['uncached']['median']:.2f} s")
    params = {k: v for k, v in vars(args).items() if k != "out"}
    params["root"] = str(root.relative_to(REPO))
    write_result("page_build", {"params": params, "results": results}, args.out)
    return results


if __name__ == "__main__":
    main()
