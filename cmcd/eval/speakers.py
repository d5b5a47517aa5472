"""Real people the student never heard: the shipped FSDD speakers, one held out at a time.

A speaker is in a student's training pairs or is measured on, never both: the variant
`digits-audio-heldout-SPEAKER` (cmcd.modalities.pairs) trains without that speaker's recordings, and its
student is then scored on all of that speaker's recordings, read the way a person's file is read
(resampled to 16 kHz, silence trimmed, levelled, log-mel; no recording chain).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from cmcd.eval.metrics import zero_label_accuracy
from cmcd.modalities import pairs
from cmcd.models.embed import embed


def held_out_speaker(pair: str) -> str | None:
    """The real speaker a pair variant leaves out of training (None: it leaves out nobody)."""
    spec = pairs.get_spec(pair)
    base = pairs.get_spec(spec.base or spec.name)
    everyone = base.render_options.get("real_speakers", ())
    missing = [name for name in everyone if name not in spec.render_options.get("real_speakers", ())]
    if len(missing) > 1:
        raise ValueError(f"{pair} leaves out {len(missing)} real speakers; a study holds out one at a time")
    return missing[0] if missing else None


@lru_cache(maxsize=8)
def speaker_samples(speaker: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every recording of one real speaker as the student's input (N, 1, 40, 40), and its digits."""
    from cmcd.modalities.audio import fsdd
    from cmcd.modalities.audio import renderer as audio

    recorded = fsdd.recordings()
    rows = recorded.of((speaker,))
    return audio.log_mel(recorded.waveforms[rows]), recorded.digits[rows]


def speaker_accuracy(student: torch.nn.Module, head: torch.nn.Linear, speaker: str) -> dict:
    """Zero-label head accuracy on one real speaker's recordings."""
    features, digits = speaker_samples(speaker)
    return {"speaker": speaker, "n": len(digits),
            **zero_label_accuracy(embed(student, features), digits, head)}
