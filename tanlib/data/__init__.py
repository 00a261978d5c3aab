"""Data layer: dataset readers -> manifests, image loading, augmentation, SynthFER.

Every dataset (RAF-DB, FERPlus, image folders, SynthFER) becomes a ``Manifest``; the
training engine reads only manifests, through ``load_images`` + ``BatchAugment`` (fast,
in-memory) or ``ManifestDataset`` (per-sample torchvision transforms).

Every name below is imported from its module on first use (``tanlib.lazy``): reading a
manifest does not import torch.
"""

from tanlib.lazy import lazy_exports

_EXPORTS = {  # name -> the module that defines it
    **dict.fromkeys(
        [
            "BatchAugment",
            "IMAGENET_MEAN",
            "IMAGENET_STD",
            "ManifestDataset",
            "eval_transforms",
            "load_images",
            "m_per_class_sampler",
            "train_transforms",
        ],
        "tanlib.data.images",
    ),
    **dict.fromkeys(["DATASETS", "CheckReport", "Manifest", "build_manifest", "check_dataset"], "tanlib.data.manifest"),
    **dict.fromkeys(["PROBLEM_KINDS", "Problem"], "tanlib.data.problems"),
    **dict.fromkeys(["decode_images", "read_rgb"], "tanlib.data.decode"),
    "generate_synthfer": "tanlib.data.synthfer",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
