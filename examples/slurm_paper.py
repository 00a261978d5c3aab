"""One run of the ``paper`` preset on several SLURM nodes x GPUs: torchrun under submitit.

``tan sweep --executor slurm`` puts one run in each job. One run on several GPUs stays
``torchrun`` (DDP with global mining, docs/training.md#distributed-training): this script
submits one SLURM job of ``--nodes`` nodes with one task per node, and each task starts

    python -m torch.distributed.run --nnodes NODES --nproc-per-node GPUS --node-rank RANK
        --master-addr FIRST_NODE --master-port PORT -m tanlib.engine.train --config C --out RUN

(rank 0 writes the run directory, which must be on a filesystem all nodes share). The job
is checkpointable (submitit.helpers.Checkpointable): when SLURM signals it (time limit,
or a preemption the cluster signals), submitit requeues it and the new torchrun resumes
from the run's ``last.pt``; a run already finished is not trained again.

    python examples/slurm_paper.py --method tan --dataset rafdb --root data/rafdb \\
        --out runs/paper-tan --partition gpu --nodes 2 --gpus-per-node 4 --time 120

The same code path on one machine without SLURM (submitit's local executor; CPU, gloo):

    python examples/slurm_paper.py --cluster local --nodes 1 --gpus-per-node 0 --nproc-per-node 2 \\
        --preset smoke --root data/synthfer-smoke --set epochs=1 --set num_threads=1 --out /tmp/ddp-smoke

What to expect (throughput, global batch): docs/scale.md. Needs ``pip install 'tanlib[slurm]'``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import submitit

from tanlib.config import parse_set, preset
from tanlib.pipeline import run_is_complete


class TorchrunTrain(submitit.helpers.Checkpointable):
    """One task per node: torchrun of ``tanlib.engine.train``; resumed after a requeue."""

    def __init__(self, config_path: str, out: str, nproc_per_node: int):
        self.config_path, self.out, self.nproc_per_node = config_path, out, nproc_per_node

    def __call__(self) -> str:
        out = Path(self.out)
        if run_is_complete(out):
            return f"{out}: finished already"
        env = submitit.JobEnvironment()
        if (out / "last.pt").is_file():
            mode = ["--resume"]
        elif (out / "config.json").is_file():  # stopped in its first epoch: start again
            mode = ["--overwrite"]
        else:
            mode = []
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            str(env.num_nodes),
            "--nproc-per-node",
            str(self.nproc_per_node),
            "--node-rank",
            str(env.node),
            "--master-addr",
            env.hostnames[0],
            "--master-port",
            str(20000 + int(env.raw_job_id) % 20000),
            "-m",
            "tanlib.engine.train",
            "--config",
            self.config_path,
            "--out",
            str(out),
            *mode,
        ]
        print(" ".join(command), flush=True)
        proc = subprocess.Popen(command)
        try:
            code = proc.wait()
        finally:
            if proc.poll() is None:  # this task is being stopped (requeue): stop torchrun and its workers
                proc.terminate()
                proc.wait()
        if code != 0:
            raise RuntimeError(f"torchrun exited with {code} on node {env.node}; see this job's stderr")
        return f"{out}: trained"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--method", default="tan")
    p.add_argument("--preset", default="paper", help="scale preset (default: paper: 224 px, 70 epochs)")
    p.add_argument("--dataset", default="synthfer")
    p.add_argument("--root", required=True, help="dataset folder, on a filesystem every node sees")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. amp=bf16, channels_last=true, seed=1",
    )
    p.add_argument("--out", required=True, help="run directory, on a filesystem every node sees")
    p.add_argument("--cluster", default="slurm", choices=("slurm", "local"))
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--gpus-per-node", type=int, default=4)
    p.add_argument("--nproc-per-node", type=int, default=None, help="training processes per node (default: GPUs)")
    p.add_argument("--cpus-per-node", type=int, default=8)
    p.add_argument("--mem-gb", type=float, default=None)
    p.add_argument("--partition", default=None)
    p.add_argument("--time", type=int, default=120, help="minutes per job; past it the job is requeued and resumes")
    args = p.parse_args(argv)

    out = Path(args.out).resolve()
    logs = out.with_name(out.name + ".submitit")
    logs.mkdir(parents=True, exist_ok=True)
    config = preset(
        args.method,
        args.preset,
        dataset=args.dataset,
        root=str(Path(args.root).resolve()),
        progress=False,
        **parse_set(args.set),
    )
    config_path = logs / "config.json"
    config.save(config_path)

    executor = submitit.AutoExecutor(folder=logs, cluster=args.cluster)
    executor.update_parameters(
        name=f"tan-{args.preset}-{args.method}",
        nodes=args.nodes,
        tasks_per_node=1,
        gpus_per_node=args.gpus_per_node,
        cpus_per_task=args.cpus_per_node,
        mem_gb=args.mem_gb,
        timeout_min=args.time,
        slurm_partition=args.partition,
    )
    job = executor.submit(TorchrunTrain(str(config_path), str(out), args.nproc_per_node or args.gpus_per_node))
    print(
        f"submitted job {job.job_id}: {args.nodes} node(s) x {args.nproc_per_node or args.gpus_per_node} "
        f"process(es); logs {logs}",
        flush=True,
    )
    print(job.results()[0], flush=True)  # waits; Ctrl-C stops waiting, not the job
    return 0


if __name__ == "__main__":
    sys.exit(main())
