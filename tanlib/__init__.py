"""tanlib: the reproducibility kit for TAN (Gou et al., ICAC 2023)."""

__version__ = "0.1.0"
