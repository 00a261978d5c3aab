"""history.csv's mean attention per class: the objective's per-class sums over an epoch's
batches, divided by the per-class counts (``runstate.history_row``), against a naive mean."""

from __future__ import annotations

import math

import torch

from tanlib.config import preset
from tanlib.engine.runstate import history_row
from tanlib.engine.train import EpochStats
from tanlib.losses import TANObjective
from tanlib.models.tan_net import TANOutput


def test_history_has_the_mean_attention_of_each_class_over_the_epoch():
    torch.manual_seed(0)
    objective = TANObjective(preset("tan", "smoke")).train()
    sums: dict = {}
    all_att, all_y = [], []
    for _ in range(3):
        y = torch.randint(0, 6, (16,))  # class 6 never appears
        out = TANOutput(torch.randn(16, 7), torch.rand(16), torch.nn.functional.normalize(torch.randn(16, 128)), None)
        _, parts = objective(out, y)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        all_att.append(out.attention)
        all_y.append(y)
    att, y = torch.cat(all_att), torch.cat(all_y)
    row = history_row(1, EpochStats(1e-3, sums, 10, 48, 0, 3, 1.0), {"val_acc": 0.5}, 1.0, 1.0)
    for j in range(6):
        assert math.isclose(row[f"attention_class{j}"], float(att[y == j].mean()), rel_tol=1e-5)
    assert math.isnan(row["attention_class6"])
    ce = TANObjective(preset("ce", "smoke")).train()
    _, parts = ce(TANOutput(torch.randn(4, 7), torch.ones(4), torch.randn(4, 128), None), torch.tensor([0, 1, 2, 3]))
    assert not any(k.startswith("attention_sum_class") for k in parts)  # no attention, no columns
