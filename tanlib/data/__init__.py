"""Data layer: dataset readers -> manifests, image loading, augmentation, SynthFER.

Every dataset (RAF-DB, FERPlus, image folders, SynthFER) becomes a ``Manifest``; the
training engine reads only manifests, through ``load_images`` + ``BatchAugment`` (fast,
in-memory) or ``ManifestDataset`` (per-sample torchvision transforms).
"""

from .images import (IMAGENET_MEAN, IMAGENET_STD, BatchAugment, ManifestDataset, eval_transforms,
                     load_images, m_per_class_sampler, read_rgb, train_transforms)
from .manifest import DATASETS, CheckReport, Manifest, build_manifest, check_dataset
from .problems import PROBLEM_KINDS, Problem
from .synthfer import generate_synthfer

__all__ = [
    "BatchAugment", "CheckReport", "DATASETS", "IMAGENET_MEAN", "IMAGENET_STD", "Manifest", "ManifestDataset",
    "PROBLEM_KINDS", "Problem", "build_manifest", "check_dataset", "eval_transforms", "generate_synthfer",
    "load_images", "m_per_class_sampler", "read_rgb", "train_transforms",
]
