"""The lowest stage above paths and runtime: the real source images, the on-disk cache, seeded
random streams, the glyph geometry every renderer starts from, and checks and writers of a person's
files. Nothing here knows a modality."""
