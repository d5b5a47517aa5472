"""Evaluation: metrics of a student from embeddings, run records, classification."""
