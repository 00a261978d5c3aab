"""The optimiser the engine builds: fused Adam, the same steps as torch's reference loop."""

import torch

from tanlib.config import preset
from tanlib.engine.train import build_optimizer
from tanlib.losses import TANObjective
from tanlib.models import build_model


def test_fused_adam_takes_the_reference_steps():
    config = preset("tan", "smoke", embedding_dim=16)
    torch.manual_seed(0)
    model = build_model(config, num_classes=7, verbose=False)
    objective = TANObjective(config, embedding_dim=model.embedding_dim)
    opt = build_optimizer(config, model, objective)
    assert opt.defaults["fused"] is True and opt.defaults["weight_decay"] == config.weight_decay
    params = [p for g in opt.param_groups for p in g["params"]]
    start = [p.detach().clone() for p in params]
    twins = [p.detach().clone().requires_grad_() for p in params]
    reference = torch.optim.Adam(twins, lr=config.lr, weight_decay=config.weight_decay, foreach=False)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        for p, q in zip(params, twins):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        opt.step()
        reference.step()
    assert all(torch.allclose(p, q, rtol=1e-5, atol=1e-7) for p, q in zip(params, twins))
    assert all(not torch.equal(p, s) for p, s in zip(params, start))  # every parameter moved
