"""Step 1: source pre-training of the teachers (`cmcd pretrain`).

SimCLR (two augmented views, InfoNCE with in-batch negatives) on the source photos of the teacher
split, then a linear head on the frozen, normalised features with the source labels: the `ssl`
teacher. The `ft` teacher continues from there, fine-tuning encoder and head with the source
labels. Both are saved to checkpoints/ with their accuracy on held-out source photos.

`fine_tune_from_ssl` redoes only the second stage: the `ft` teacher again, from the saved `ssl`
teacher, on the teacher split of the current data (which may hold items added after the `ssl`
teacher was trained), leaving the `ssl` teacher and every benchmark that reads it unchanged.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cmcd import paths, runtime
from cmcd.modalities import augment, pairs
from cmcd.modalities.encoders import ProjectionHead
from cmcd.models.embed import embed
from cmcd.models.init import initialise
from cmcd.models.teacher import Teacher, load_teacher, save_teacher, teacher_stem
from cmcd.paths import checkpoint_root
from cmcd.train.loop import BatchSampler, Hooks, LoopSettings, train_loop, warmup_cosine

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    dataset: str = "digits"
    ssl_epochs: int = 30
    ft_epochs: int = 10
    head_epochs: int = 100
    batch_size: int = 256
    width: int = 32
    embed_dim: int = 128
    lr: float = 2e-3
    ft_lr: float = 1e-3
    temperature: float = 0.2
    seed: int = 0
    device: str = "auto"
    max_items: int | None = None  # cap the teacher split (tests, quick runs)
    out: str | None = None  # default: checkpoint_root()
    data_version: str = field(default=paths.DATA_VERSION)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's InfoNCE over 2N views: each view's positive is its twin, the other 2N-2 are negatives."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    n = len(z1)
    twins = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, twins)


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0


def train_simclr(encoder: nn.Module, projector: nn.Module, images: torch.Tensor,
                 config: PretrainConfig, device: torch.device,
                 report: Callable[[str], None]) -> list[float]:
    """SimCLR on the source photos; the mean loss of each epoch (one device sync per epoch)."""
    generator = runtime.generator(device, config.seed)
    sampler = BatchSampler(len(images), config.batch_size, generator)
    settings = LoopSettings([encoder, projector], config.lr, weight_decay=1e-4, device=device,
                            lr_factor=warmup_cosine(config.ssl_epochs * len(sampler), warmup=len(sampler)))

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        x = _to_float(images[batch])
        views = [projector(encoder(augment.augment_rgb(x, generator))) for _ in range(2)]
        return {"nt_xent": nt_xent(views[0].float(), views[1].float(), config.temperature)}

    epoch_losses: list[float] = []
    running: list[torch.Tensor] = []  # this epoch's step losses, left on the device until its end

    def on_epoch(epoch: int) -> None:
        epoch_losses.append(torch.stack(running).mean().item())
        running.clear()
        report(f"simclr epoch {epoch}/{config.ssl_epochs}: loss {epoch_losses[-1]:.3f}")

    train_loop(step, sampler, config.ssl_epochs, settings,
               Hooks(on_step=lambda done: running.append(done.loss.detach()), on_epoch=on_epoch))
    return epoch_losses


def fit_linear_head(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                    epochs: int, device: torch.device, generator: torch.Generator) -> nn.Linear:
    """Multinomial logistic regression on normalised features, full batch, in full precision;
    `generator` (on the CPU) draws the initial weights."""
    head = initialise(nn.Linear(features.shape[1], num_classes), generator).to(device)
    x, y = F.normalize(features, dim=1).to(device), labels.to(device)
    settings = LoopSettings([head], lr=0.05, weight_decay=1e-4, device=device, mixed_precision=False)
    train_loop(lambda _: {"ce": F.cross_entropy(head(x), y)}, [None], epochs, settings)
    return head


def fine_tune(teacher: Teacher, images: torch.Tensor, labels: torch.Tensor, config: PretrainConfig,
              device: torch.device, report: Callable[[str], None]) -> Teacher:
    encoder = copy.deepcopy(teacher.encoder).requires_grad_(True)
    head = copy.deepcopy(teacher.head).requires_grad_(True)
    generator = runtime.generator(device, config.seed + 1)
    sampler = BatchSampler(len(images), config.batch_size, generator)
    settings = LoopSettings([encoder, head], config.ft_lr, weight_decay=1e-4, device=device,
                            lr_factor=warmup_cosine(config.ft_epochs * len(sampler)))

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        x = augment.random_affine(_to_float(images[batch]), generator, degrees=8, shift=0.06)
        x = augment.colour_jitter(x, generator, strength=0.3, grey_probability=0.1)
        logits = head(F.normalize(encoder(x).float(), dim=1))
        return {"ce": F.cross_entropy(logits, labels[batch])}

    last = {}  # the latest step's loss, read once per epoch
    hooks = Hooks(on_step=lambda done: last.update(loss=done.loss.detach()), on_epoch=lambda epoch: report(
        f"fine-tune epoch {epoch}/{config.ft_epochs}: loss {last['loss'].item():.3f}"))
    train_loop(step, sampler, config.ft_epochs, settings, hooks)
    return Teacher(encoder, head, {}).freeze()


def source_accuracy(teacher: Teacher, split: pairs.Split) -> float:
    device = next(teacher.encoder.parameters()).device
    with torch.no_grad():
        logits = teacher.classify(teacher.embed(split.source.to(device)))
    return round((logits.argmax(1).cpu() == split.labels).float().mean().item(), 4)


def pretrain(config: PretrainConfig, report: Callable[[str], None] = log.info) -> dict:
    """Train and save both teachers of a dataset; returns their metadata."""
    device = runtime.resolve_device(config.device)
    splits, images, labels = _teacher_split(config, device, report)
    num_classes = int(splits["test"].labels.max()) + 1
    report(f"pre-training {config.dataset} teachers on {len(images):,} source photos ({device})")

    started = time.perf_counter()
    weights = runtime.generator(torch.device("cpu"), config.seed)  # initial weights, in this order
    encoder = initialise(pairs.SOURCE.build_encoder(config.width, config.embed_dim), weights)
    projector = initialise(ProjectionHead(config.embed_dim), weights)
    simclr_losses = train_simclr(encoder.to(device), projector.to(device), images, config, device, report)
    encoder.eval()
    features = embed(encoder, images, normalize=True, mixed_precision=False).to(device)
    head = fit_linear_head(features, labels, num_classes, config.head_epochs, device, weights)
    ssl_teacher = Teacher(encoder, head, {}).freeze()
    ssl_seconds = time.perf_counter() - started
    ft_teacher = fine_tune(ssl_teacher, images, labels, config, device, report)
    ft_seconds = time.perf_counter() - started

    saved = Saving(config, splits, len(images), simclr_losses[-1], device, report)
    return {"ssl": saved(ssl_teacher, "ssl", ssl_seconds), "ft": saved(ft_teacher, "ft", ft_seconds)}


def _teacher_split(config: PretrainConfig, device: torch.device, report: Callable[[str], None]):
    """(every split of the source photos, the teacher split's images and labels on `device`)."""
    splits = pairs.load_source_splits(config.dataset, seed=config.seed, progress=report)
    train = splits["teacher"]
    keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed))
    keep = keep[: config.max_items].sort().values  # all of it unless capped
    return splits, train.source[keep].to(device), train.labels[keep].to(device)


@dataclass
class Saving:
    """Saves a trained teacher with its metadata (config, data, accuracy on held-out photos)."""

    config: PretrainConfig
    splits: dict
    items: int
    simclr_final_loss: float
    device: torch.device
    report: Callable[[str], None]

    def __call__(self, teacher: Teacher, variant: str, seconds: float, **extra) -> dict:
        config = self.config
        teacher.metadata = {
            "dataset": config.dataset, "variant": variant,
            "config": {k: v for k, v in asdict(config).items() if k != "out"},
            "device": str(self.device), "train_seconds": round(seconds, 1),
            "train_items": self.items, "simclr_final_loss": round(self.simclr_final_loss, 4),
            "source_val_acc": source_accuracy(teacher, self.splits["val"]),
            "source_test_acc": source_accuracy(teacher, self.splits["test"]), **extra,
        }
        out = Path(config.out or checkpoint_root())
        save_teacher(teacher.to("cpu"), teacher_stem(config.dataset, variant, out))
        self.report(f"{variant} teacher: source test accuracy {teacher.metadata['source_test_acc']:.4f}")
        return teacher.metadata


def fine_tune_from_ssl(config: PretrainConfig, report: Callable[[str], None] = log.info) -> dict:
    """Train and save the `ft` teacher again from the saved `ssl` teacher of config.out (default:
    the shipped checkpoints) on the current data's teacher split; returns its metadata."""
    device = runtime.resolve_device(config.device)
    ssl_teacher = load_teacher(config.dataset, "ssl", Path(config.out) if config.out else None).to(device)
    splits, images, labels = _teacher_split(config, device, report)
    report(f"fine-tuning the {config.dataset} ft teacher from the saved ssl teacher on {len(images):,} "
           f"source photos ({device})")
    started = time.perf_counter()
    ft_teacher = fine_tune(ssl_teacher, images, labels, config, device, report)
    ssl_metadata = ssl_teacher.metadata
    saved = Saving(config, splits, len(images), ssl_metadata["simclr_final_loss"], device, report)
    return {"ft": saved(ft_teacher, "ft", time.perf_counter() - started,
                        ssl_teacher={key: ssl_metadata[key] for key in ("config", "train_items",
                                                                         "source_test_acc")})}
