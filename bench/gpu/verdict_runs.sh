#!/bin/bash
# The verdict's runs on a GPU machine, as one call of the device tool (docs/benchmarks.md,
# section 5, "The verdict's runs on an H200"): the run of 2026-12-04 was this script.
#
# Prepared here, in an ignored folder .gpu/ of the main tree, carried with the call:
#   .gpu/runs3/      a checkout of the verdict's commit with its git history
#                    (git init; git fetch --depth 1 file://$PWD <commit>; git checkout FETCH_HEAD)
#   .gpu/whl/        the pytorch-metric-learning wheel (the GPU image lacks it)
#   .gpu/tanlib.md5  md5sum of that checkout's tanlib/*.py; .gpu/data<level>.md5: of this
#                    machine's SynthFER folders (the data generated there is compared with them)
# Run there from the main tree's root: DEADLINE=495 K=15 bash bench/gpu/verdict_runs.sh
# (SEEDS, MORE, LEVELS choose the runs; those already recorded in DONE are skipped; SMOKE=0
# skips the smoke runs of a commit that passed them before.)
# It copies the checkout to $W (/work/runs3: the configs name /work/runs3/data/... as root),
# generates the datasets, trains the 7 methods at the smoke preset on CUDA (and stops if one
# fails), then the calibrated runs K at a time in the order of LEVELS, SEEDS then MORE, until
# DEADLINE seconds after the start, and writes to $OUT the records of the finished runs
# (recs.tgz, under DONE's path, by the main tree's tan record; their names in recorded.txt), the start/end events, nvidia-smi dmon samples and
# the smoke runs. Without git there, env.json's commit is set from the md5 match (git_source).
set -u
COMMIT=${COMMIT:-5260c42ea8169f2dea92ce8325913692a7f39c51}  # the verdict's, checked out in .gpu/runs3
T0=$(date +%s)
DEADLINE=${DEADLINE:-515}
K=${K:-14}
LEVELS=${LEVELS:-"0.1 0.3 0.0"}
MAIN=$PWD
PY=${PY:-python3}; export PY
rm -rf /tmp/g /tmp/logs /tmp/recs
W=${W:-/work/runs3}
PRESET=${PRESET:-calibrated}
SEEDS=${SEEDS:-"3 4 5 6 7"}
MORE=${MORE-"8 9"}  # after every level of SEEDS
METHODS="tan tan-nothreshold tan-euclid scn triplet attention ce"  # the longest first: a shorter tail
DONE=${DONE:-results/verdict/synthfer-calibrated-float32}  # runs recorded there are not trained again
el() { echo $(($(date +%s) - T0)); }
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 1
nvidia-smi -L
(nvidia-smi dmon -s u -d 5 > $OUT/dmon.txt 2>&1 &)
mkdir -p $(dirname $W) && rm -rf $W && cp -a .gpu/runs3 $W
cd $W
export PYTHONPATH=$W:/tmp/site PYTHONUNBUFFERED=1
md5sum -c --quiet $MAIN/.gpu/tanlib.md5 || { echo "tanlib differs from $COMMIT"; exit 2; }
if git --version; then GIT=1; echo "git: $(git rev-parse HEAD) dirty=[$(git status --porcelain -- tanlib)]"; else GIT=0; echo NOGIT; fi
$PY -c "import torch, torchvision, tanlib, pytorch_metric_learning as p; print(torch.__version__, torchvision.__version__, p.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))" || exit 1
mkdir -p /tmp/g /tmp/logs
for m in $METHODS; do
  printf "name: gpu-smoke-$m\npreset: smoke\ndataset: synthfer\nmethods: [$m]\nseeds: [0]\nparameters:\n  num_threads: [1]\n" > /tmp/g/smoke-$m.yaml
done
: > /tmp/queue
for l in $LEVELS $(for x in $LEVELS; do echo m$x; done); do
  ss=$SEEDS; [ ${l#m} != $l ] && { ss=$MORE; l=${l#m}; }
  for s in $ss; do for m in $METHODS; do
  n=gpu-$m-s$s-n$l
  [ -d "$MAIN/$DONE/$m-seed$s-num_threads=1-synth_label_noise=$l-synth_noise_model=random" ] && continue
  printf "name: $n\npreset: $PRESET\ndataset: synthfer\nmethods: [$m]\nseeds: [$s]\nsynthfer:\n  label_noise: [$l]\n  noise_model: [random]\nparameters:\n  num_threads: [1]\n" > /tmp/g/$n.yaml
  echo $n >> /tmp/queue
done; done; done
# the datasets, once each, side by side (generate_atomically), then compared with this machine's
cat > /tmp/gen.py <<'EOF'
import sys
from tanlib.pipeline.sweep import grid_jobs, load_grid, synthfer_root
g = load_grid(sys.argv[1])
print(synthfer_root(g, grid_jobs(g)[0].synthfer))
EOF
[ ${SMOKE:-1} = 1 ] && { $PY /tmp/gen.py /tmp/g/smoke-ce.yaml > /tmp/logs/gen-smoke.log 2>&1 & }
for l in $LEVELS; do y=$(ls /tmp/g/gpu-*-n$l.yaml | head -1); [ -n "$y" ] && { $PY /tmp/gen.py $y > /tmp/logs/gen-$l.log 2>&1 & }; done
wait
cat /tmp/logs/gen-*.log | tail -8
for l in $LEVELS; do
  ls /tmp/g/gpu-*-n$l.yaml > /dev/null 2>&1 || continue  # every run of the level already recorded
  [ $PRESET = calibrated ] && (cd "data/synthfer-calibrated-label_noise=$l-noise_model=random" && md5sum -c --quiet $MAIN/.gpu/data$l.md5 > /tmp/logs/md5-$l.txt 2>&1)
  echo "data $l: $(grep -c FAILED /tmp/logs/md5-$l.txt) of $(wc -l < $MAIN/.gpu/data$l.md5) files differ from this machine's"
done
echo "[$(el) s] data ready"
[ ${SMOKE:-1} = 1 ] && ls /tmp/g/smoke-*.yaml | xargs -P 7 -I{} sh -c '$PY -m tanlib.cli sweep --grid {} --no-report > {}.log 2>&1 || echo "FAILED {}"'
bad=0
for m in $([ ${SMOKE:-1} = 1 ] && echo $METHODS); do
  r=$(ls -d reports/sweeps/gpu-smoke-$m/runs/* 2>/dev/null | head -1)
  $PY -c "import sys; from tanlib.engine.rundir import run_is_complete as c; sys.exit(0 if c(sys.argv[1]) else 1)" "$r" || { bad=1; echo "== smoke $m failed"; tail -25 /tmp/g/smoke-$m.yaml.log; }
done
echo "[$(el) s] smoke done, bad=$bad"
[ $bad = 0 ] || exit 3
cat > /tmp/one.sh <<'EOF'
left=$(( T0 + DEADLINE - $(date +%s) ))
[ $left -lt 60 ] && exit 0
echo "$(date +%s) start $1" >> /tmp/logs/events
timeout $left $PY -m tanlib.cli sweep --grid /tmp/g/$1.yaml --no-report > /tmp/logs/$1.log 2>&1
rc=$?  # before $(date) resets it (the first call's events say rc=0 for the runs it stopped)
echo "$(date +%s) end $1 rc=$rc" >> /tmp/logs/events
EOF
export T0 DEADLINE
xargs -P $K -L1 bash /tmp/one.sh < /tmp/queue
echo "[$(el) s] training stopped"
$PY - "$GIT" "$COMMIT" > /tmp/done.txt <<'EOF2'
import glob, json, os, pathlib, sys
from tanlib.engine.rundir import run_is_complete
for line in open("/tmp/queue"):
    for r in sorted(glob.glob(f"reports/sweeps/{line.strip()}/runs/*")):
        if not run_is_complete(r):
            continue
        if sys.argv[1] == "0":  # no git there: provenance from the file hashes (md5sum -c above)
            p = pathlib.Path(r) / "env.json"
            e = json.loads(p.read_text())
            e.update(git_commit=sys.argv[2], git_dirty=False,
                     git_source="no git on the machine: tanlib/ matched the commit file by file (md5)")
            p.write_text(json.dumps(e, indent=2, sort_keys=True) + "\n")
        print(os.path.abspath(r))
EOF2
mapfile -t done_runs < /tmp/done.txt
echo "${#done_runs[@]} runs finished [$(el) s]"
cp /tmp/logs/events $OUT/events.txt 2>/dev/null
for r in "${done_runs[@]}"; do basename "$r"; done > $OUT/recorded.txt  # this call's records (verdict_throughput.py)
tail -n 3 /tmp/logs/*.log > $OUT/logs.txt 2>/dev/null
if [ ${#done_runs[@]} -gt 0 ]; then
  mkdir -p /tmp/recs/$DONE  # packed under DONE's path (results/verdict/<folder>): untar it in the main tree's root
  (cd $MAIN && PYTHONPATH=$MAIN:/tmp/site $PY -m tanlib.cli record "${done_runs[@]}" --out /tmp/recs/$DONE --index /tmp/recs/INDEX.json > $OUT/record.txt 2>&1; echo "record rc=$?")
  tar czf $OUT/recs.tgz -C /tmp/recs results
fi
# the smoke runs' records too (evidence that each method trains on CUDA)
[ ${SMOKE:-1} = 1 ] && tar czf $OUT/smoke.tgz --exclude='*.pt' --exclude='*.npz' --exclude=manifest.csv -C reports/sweeps $(cd reports/sweeps && ls -d gpu-smoke-*)
ls -la $OUT; echo "[$(el) s] end"
