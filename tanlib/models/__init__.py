"""Models: the TAN network and its backbone weights (docs/method.md, docs/training.md)."""

from __future__ import annotations

from ..config import Config
from .pretrained import SYNTHFACE, LoadReport, imagenet_weights, load_backbone_weights, resolve_pretrained
from .tan_net import TANNet, TANOutput


def build_model(config: Config, num_classes: int = 7, verbose: bool = True) -> TANNet:
    """The network described by ``config``, with its backbone weights loaded.

    ``config.pretrained``: ``"scratch"`` (random init), ``"imagenet"`` (torchvision weights,
    from the hub cache or the network), ``"synthface"`` (the cached file of ``tan pretrain``,
    docs/pretraining.md) or the path of a checkpoint (see ``pretrained``).
    The load report (with the file's provenance, if it carries one) is kept on
    ``model.load_report``.
    """
    model = TANNet(
        num_classes,
        backbone=config.backbone,
        embedding_dim=config.embedding_dim,
        attention=config.attention,
        dropout=config.dropout,
    )
    model.load_report = None
    if config.pretrained == "imagenet":
        state = {k: v for k, v in imagenet_weights(config.backbone).items() if not k.startswith("fc.")}
        model.backbone.load_state_dict(state, strict=False)
        model.load_report = LoadReport("torchvision IMAGENET1K_V1", len(state), 0, 0, len(state))
    elif config.pretrained != "scratch":
        path = resolve_pretrained(config.pretrained, config.backbone)  # "synthface": the cached file
        model.load_report = load_backbone_weights(model.backbone, path)
    if verbose and model.load_report is not None:
        print(f"pretrained backbone: {model.load_report}")
    return model


__all__ = [
    "build_model",
    "TANNet",
    "TANOutput",
    "LoadReport",
    "load_backbone_weights",
    "resolve_pretrained",
    "SYNTHFACE",
]
