"""Networks and their files: encoders, the frozen teacher, checkpoints."""
