"""Training: the one loop, losses, objectives, distillation and pre-training."""
