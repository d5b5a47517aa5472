"""Renderers: every modality of an item drawn from the same real image."""
