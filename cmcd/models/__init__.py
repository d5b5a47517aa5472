"""Networks and their files: the frozen teacher, checkpoints, dense (segmentation) models, one embed
helper. The encoders they are built from are the modalities' (cmcd.modalities.encoders)."""
