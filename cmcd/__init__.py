"""CMCD: cross-modality contrastive distillation (arXiv 2405.03355) on real, offline data."""

__version__ = "0.1.0"
