"""Stage 0: the real images, the modality renderers, the pair registry and the on-disk cache."""
