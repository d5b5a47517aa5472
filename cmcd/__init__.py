"""CMCD: cross-modality contrastive distillation (arXiv 2405.03355) on real, offline data."""

import logging

__version__ = "0.1.0"

# Progress and warnings are logged under "cmcd"; they show only where logging is configured (the
# `cmcd` command configures it in cli.main).
logging.getLogger(__name__).addHandler(logging.NullHandler())
