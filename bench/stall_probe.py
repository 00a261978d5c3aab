"""Probe of the from-scratch stall of ``tan-euclid`` (issue 28; docs/method.md, "The
from-scratch stall of tan-euclid").

Trains one config with the kit's own loop (``tanlib.engine.train.train``) and records, at
every training step, through the loop's ``on_step`` hook and gradient hooks on the
network's outputs (``<out>/steps.csv``, one row per step):

* the attention a (``a_mean``, ``a_std``), the logit scale (``z_scale``: per-sample std of z
  over the classes; ``az_scale``: the same of the logits the CE sees, a * z or the
  ``attention_norm`` weights times z), the mean top probability of the CE's softmax
  (``pmax``) and the share of the batch predicted as its most predicted class;
* the classifier's gradient norm ||dL/dW|| (``gW``), the per-sample attention gradient
  dL/da (``ga_mean``; ``ga_down``: the share of samples whose weight the step pushes down,
  dL/da > 0; ``ga_down_wrong``: the same among the wrongly predicted samples);
* the gradient reaching the backbone features h from the CE (through z and a, ``gh_ce``)
  and from the metric terms (through e, ``gh_metric``), and their cosine;
* the effective rank (exp of the entropy of the normalised singular values) of the batch's
  features h and embeddings e (``h_erank``, ``e_erank``), and the share of their variance
  that the labels explain (between-class over total: ``h_label_r2``, ``e_label_r2``; about
  (K - 1) / (N - 1) = 0.095 for features that carry no label information);
* every ``--label-every`` steps, how much of each metric term's gradient on e does not
  depend on the labels (``labelfree_triplet``, ``labelfree_mahal``: the cosine between the
  gradient with the true labels and the mean gradient over 4 permutations of them).

``--variant detach`` runs a counterfactual by replacing the outputs the objective sees: a
detached everywhere (the attention head never trains and keeps its initial weights, which
still scale the logits and select H). ``--set weighted_ce=false`` is the a = 1
counterfactual (H is still chosen by the untrained attention head).

Prints a per-epoch table (history.csv joined with the epoch means of steps.csv). Example,
the smallest stall found (about 45 s at 1 thread on a shared 2-core CPU):

    .venv/bin/python bench/stall_probe.py --method tan-euclid --out /tmp/stall/euclid \
        --set root=data/synthfer --set max_train_samples=1000 --set image_size=48 \
        --set epochs=8 --set test_every_epoch=false
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from tanlib.config import parse_set, preset
from tanlib.losses.objective import weighted_logits
from tanlib.models import TANOutput

# the module, not the function ``tanlib.engine.train`` that shadows it in the package
train_mod = importlib.import_module("tanlib.engine.train")


def effective_rank(x: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values of the centred batch (Roy & Vetterli)."""
    s = torch.linalg.svdvals(x - x.mean(0))
    p = s / s.sum().clamp_min(1e-12)
    return float(torch.exp(-(p * p.clamp_min(1e-12).log()).sum()))


def label_r2(x: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of the batch's feature variance explained by the labels (between-class over total)."""
    xc = x - x.mean(0)
    total = (xc * xc).sum()
    between = x.new_zeros(())
    for k in labels.unique():
        m = labels == k
        between = between + m.sum() * (xc[m].mean(0) ** 2).sum()
    return float(between / total.clamp_min(1e-12))


def label_dependence(objective, e, a, labels, config, perms: int = 4) -> dict:
    """How much of each metric term's gradient on the embeddings depends on the labels:
    the cosine between the gradient with the true labels and the mean gradient over
    ``perms`` random permutations of them (1: the term pushes the same way whatever the
    labels; 0: its push is all label information)."""
    out = {}
    e0 = e.detach().float().requires_grad_(True)
    att = a.detach().float()
    gen = torch.Generator().manual_seed(int(labels.sum()) * 7919 + len(labels))

    def grad(y, term):
        if term == "triplet":
            idx = objective.triplet_miner(e0, y)
            loss_fn = objective.triplet_loss
        else:
            idx = objective.hard_miner(e0, y, att)
            loss_fn = objective.mahalanobis_loss
        if not idx[0].numel():
            return None
        return torch.autograd.grad(loss_fn(e0, y, idx), e0)[0]

    terms = [t for t, lam in (("triplet", config.lambda_triplet), ("mahal", config.lambda_mahalanobis)) if lam > 0]
    for term in terms:
        g = grad(labels, term)
        gp = [grad(labels[torch.randperm(len(labels), generator=gen).to(labels.device)], term) for _ in range(perms)]
        gp = [x for x in gp if x is not None]
        if g is None or not gp:
            continue
        mean = torch.stack(gp).mean(0)
        out[f"labelfree_{term}"] = float(F.cosine_similarity(g.flatten(), mean.flatten(), dim=0))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="tan-euclid")
    p.add_argument("--preset", default="quick")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--variant", choices=("none", "detach"), default="none")
    p.add_argument("--out", required=True)
    p.add_argument("--label-every", type=int, default=5, help="measure the label dependence every N steps")
    args = p.parse_args(argv)

    overrides = {"progress": False, "num_threads": 1, **parse_set(args.set)}
    config = preset(args.method, args.preset, **overrides)
    holder: dict = {}
    original = train_mod._build_networks

    def capture(*a, **k):
        model, objective = original(*a, **k)
        holder["model"], holder["objective"] = model, objective
        return model, objective

    train_mod._build_networks = capture
    rows: list[dict] = []

    def on_step(epoch: int, step: int, out: TANOutput, labels: torch.Tensor):
        model = holder["model"]
        if args.variant == "detach":
            out = out._replace(attention=out.attention.detach())
        a, z, e, h = out.attention, out.logits, out.embedding, out.features
        weighted = config.weighted_ce
        with torch.no_grad():
            zc = z.detach().float()
            az = weighted_logits(zc, a.detach().float(), config.attention_norm) if weighted else zc
            pred = zc.argmax(1)
            row = {
                "epoch": epoch,
                "step": step,
                "acc": float((pred == labels).float().mean()),
                "a_mean": float(a.mean()),
                "a_std": float(a.std()),
                "z_scale": float(zc.std(1).mean()),
                "az_scale": float(az.std(1).mean()),
                "pmax": float(az.softmax(1).max(1).values.mean()),
                "ce": float(F.cross_entropy(az, labels)),
                "pred_share_top": float(torch.bincount(pred, minlength=zc.shape[1]).max() / len(pred)),
                "h_erank": effective_rank(h.detach().float()),
                "e_erank": effective_rank(e.detach().float()),
                "h_label_r2": label_r2(h.detach().float(), labels),
                "e_label_r2": label_r2(e.detach().float(), labels),
            }
        if step % args.label_every == 1 or args.label_every == 1:
            row.update(label_dependence(holder["objective"], e, a, labels, config))
        rows.append(row)
        grads: dict = {}
        n = len(labels)
        wrong = (pred != labels).detach()

        def finish():
            if not {"z"} <= grads.keys():
                return
            with torch.no_grad():
                hd = h.detach().float()
                gz = grads["z"]
                row["gW"] = float((gz.T @ hd).norm())  # dL/dW of the classifier
                gh_ce = gz @ model.classifier.weight.float()
                if "a" in grads and model.attention is not None:
                    ga = grads["a"]
                    ad = a.detach()
                    row["ga_mean"] = float(n * ga.mean())  # per-sample dL/da, averaged
                    row["ga_down"] = float((ga > 0).float().mean())  # share whose weight is pushed down
                    row["ga_down_wrong"] = float(((ga > 0) & wrong).sum() / max(1, int(wrong.sum())))
                    gh_ce = gh_ce + (ga * ad * (1 - ad))[:, None] * model.attention.weight.float()
                row["gh_ce"] = float(gh_ce.norm())
                if "e" in grads:
                    ge = grads["e"]
                    ed = e.detach().float()
                    if model.projection is not None:
                        ph = model.projection(hd)
                        g = (ge - (ge * ed).sum(1, keepdim=True) * ed) / ph.norm(dim=1, keepdim=True)
                        row["gh_metric"] = float((g @ model.projection.weight.float()).norm())
                    else:
                        g = ge
                        row["gh_metric"] = float(ge.norm())
                    if model.projection is not None:
                        g = g @ model.projection.weight.float()
                    row["cos_ce_metric"] = float(F.cosine_similarity(gh_ce.flatten(), g.flatten(), dim=0))

        def hook(name):
            def fn(g):
                grads[name] = g.detach().float()
                finish()

            return fn

        # registered in this order, fired in reverse graph order: e and a before z is not
        # guaranteed, so finish() runs at every hook and the last call wins
        if e.requires_grad:
            e.register_hook(hook("e"))
        if a.requires_grad:
            a.register_hook(hook("a"))
        if z.requires_grad:
            z.register_hook(hook("z"))
        return out if args.variant != "none" else None

    out_dir = Path(args.out)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train_mod.train(config, out_dir, overwrite=True, on_step=on_step, log=lambda *a, **k: print(*a, flush=True))
    steps = pd.DataFrame(rows)
    steps.to_csv(out_dir / "steps.csv", index=False)
    hist = pd.read_csv(out_dir / "history.csv")
    per_epoch = steps.groupby("epoch").mean(numeric_only=True).drop(columns="step")
    table = hist[["epoch", "train_acc", "val_acc", "loss_ce", "attention_mean", "attention_std", "violating_triplet"]]
    table = table.merge(per_epoch.reset_index(), on="epoch", suffixes=("", "_steps"))
    cols = [c for c in table.columns if c not in ("acc", "ce", "a_mean", "a_std")]
    print(table[cols].round(4).to_string(index=False))
    print(f"first 10 steps:\n{steps.head(10).round(4).to_string(index=False)}")
    print(f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
