"""Distillation losses, one registry.

Every loss is a small `nn.Module` registered under its method name with its options, a frozen
dataclass holding the defaults that runs use and checking its own values; so adding a loss is two
classes and one decorator line, and the trainer never branches on names:

    loss = build_loss("cmc", negatives="bank")   # or CMCLoss(CMCOptions(negatives="bank"))
    terms = loss(student, teacher, index=index, bank=bank)   # {"cmc": tensor}
    total = sum(terms.values())

Shared interface of `forward`:
  student  (N, d) raw student embeddings of the batch's target inputs (normalised inside where the
           loss calls for it);
  teacher  (N, d) L2-normalised cached teacher embeddings of the same pairs;
  index    (N,) positions of these pairs in the bank;
  bank     (M, d) L2-normalised teacher embeddings of all training pairs, or None.
It returns named loss terms, already weighted, for the trainer to sum. The teacher is frozen:
teacher and bank are always detached, so only the student (and a loss's own parameters, such as a
learnable temperature) get gradients.

Under data-parallel training (`cmcd.train.parallel`) CMC and CMD `gather` the batch of every rank
first, so each rank computes the loss of the whole global batch, as open_clip's
`ClipLoss(gather_with_grad=True)` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from cmcd.train.options import MethodOptions, setting

LOSSES: dict[str, type[DistillationLoss]] = {}
NEGATIVE_SOURCES = ("batch", "bank")


def register_loss(name: str, options: type[MethodOptions]):
    """Class decorator: make the loss buildable as `build_loss(name)`, from `options`."""

    def register(cls):
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is already registered")
        cls.name, cls.Options, options.method = name, options, name
        LOSSES[name] = cls
        return cls

    return register


def build_loss(name: str, options: MethodOptions | None = None, **settings) -> nn.Module:
    """The loss `name` from its options, or from option settings over its defaults."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    if options is not None and settings:
        raise ValueError("give a loss its options or its settings, not both")
    return LOSSES[name](options or LOSSES[name].Options(**settings))


class DistillationLoss(nn.Module):
    """Base class: holds the interface and the frozen-teacher rule."""

    name = "base"
    Options: type[MethodOptions] = MethodOptions
    uses_bank = False  # True when forward needs `index` and `bank`
    task = "recognition"  # or "segmentation": dense losses on feature maps (cmcd.train.dense_losses)

    @classmethod
    def build(cls, options: MethodOptions, generator: torch.Generator | None = None):
        """The loss for a run; losses that draw random numbers take the run's generator."""
        return cls(options)

    def forward(self, student: Tensor, teacher: Tensor, *, index: Tensor | None = None,
                bank: Tensor | None = None) -> dict[str, Tensor]:
        if self.uses_bank and (bank is None or index is None):
            raise ValueError(f"loss {self.name!r} needs the teacher bank and the batch's index into it")
        bank = None if bank is None else bank.detach()
        return self.terms(student, teacher.detach(), index, bank)

    def terms(self, student: Tensor, teacher: Tensor, index: Tensor | None,
              bank: Tensor | None) -> dict[str, Tensor]:
        raise NotImplementedError


class _DiagonalLabels:
    """arange(N) on each device, made once and reused while N stays the same (as open_clip's
    ClipLoss does), so a training step allocates no label tensor."""

    def __init__(self):
        self.by_device: dict[torch.device, Tensor] = {}

    def __call__(self, n: int, device: torch.device) -> Tensor:
        labels = self.by_device.get(device)
        if labels is None or len(labels) != n:
            labels = torch.arange(n, device=device)
            self.by_device[device] = labels
        return labels


def gather(rows: Tensor, with_grad: bool = False) -> Tensor:
    """The rows of every rank, in rank order; `rows` itself when not distributed.

    With `with_grad`, gradients flow back to each rank's own rows (the backward of an all-gather
    sums every rank's gradient for them). Each rank then computes the same global loss, so its
    rows get world_size times their share, and DDP's average over the ranks cancels that factor:
    the student's gradient is the single-process gradient of the global batch."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return rows
    if with_grad:
        from torch.distributed.nn.functional import all_gather  # differentiable

        return torch.cat(all_gather(rows))
    parts = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, rows.contiguous())
    return torch.cat(parts)


# ---------------------------------------------------------------------------------------------
# Contrastive: CMC


def negatives_setting():
    return setting("batch", "negatives: the batch's teacher embeddings or the whole teacher bank",
                   choices=NEGATIVE_SOURCES)


@dataclass(frozen=True)
class CMCOptions(MethodOptions):
    temperature: float = setting(0.3, "softmax temperature τ (its start when learned)", above=0)
    learn_temperature: bool = setting(False, "learn τ as CLIP's logit scale, capped at 1/τ = 100")
    negatives: str = negatives_setting()


@register_loss("cmc", CMCOptions)
class CMCLoss(DistillationLoss):
    """Cross-modal contrastive (CLIP-style symmetric InfoNCE):
    ½ [CE(V Uᵀ/τ, diag) + CE(U Vᵀ/τ, diag)].

    τ is fixed at 0.3 by default (chosen on validation); `learn_temperature` learns it as CLIP
    does, stored as log(1/τ) (CLIP's logit scale) and capped at 100. With `negatives="bank"`, the
    student→teacher direction scores each v_i against all M bank entries (its positive sits at
    index[i]); teacher→student stays in-batch, since there is no bank of student embeddings."""

    MAX_LOGIT_SCALE = 100.0

    def __init__(self, options: CMCOptions = CMCOptions()):
        super().__init__()
        self.negatives = options.negatives
        self.uses_bank = options.negatives == "bank"
        log_scale = torch.tensor(math.log(1.0 / options.temperature))
        if options.learn_temperature:
            self.log_logit_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_logit_scale", log_scale)
        self.diagonal = _DiagonalLabels()

    @property
    def logit_scale(self) -> Tensor:
        return self.log_logit_scale.clamp(max=math.log(self.MAX_LOGIT_SCALE)).exp()

    def terms(self, student, teacher, index, bank):
        v = gather(F.normalize(student, dim=1), with_grad=True)
        teacher = gather(teacher)
        scale = self.logit_scale
        labels = self.diagonal(len(v), v.device)
        if self.negatives == "bank":
            student_to_teacher = F.cross_entropy(scale * v @ bank.T, gather(index))
        else:
            student_to_teacher = F.cross_entropy(scale * v @ teacher.T, labels)
        teacher_to_student = F.cross_entropy(scale * teacher @ v.T, labels)
        return {"cmc": (student_to_teacher + teacher_to_student) / 2}


# ---------------------------------------------------------------------------------------------
# Soft targets: CMD


@dataclass(frozen=True)
class SoftTargetOptions(MethodOptions):
    """CMD's two temperatures and their rule, shared by `cmd` and `dense-cmd`."""

    teacher_temperature: float = setting(0.1, "τ_T of the teacher's targets (below τ_S)", above=0)
    student_temperature: float = setting(0.3, "τ_S of the student's predictions", above=0)

    aliases = {"temperature": "student_temperature"}

    def check(self):
        if not self.teacher_temperature < self.student_temperature:
            raise ValueError(f"{self.method}: teacher_temperature ({self.teacher_temperature}) must be "
                             f"below student_temperature ({self.student_temperature})")


@dataclass(frozen=True)
class CMDOptions(SoftTargetOptions):
    negatives: str = negatives_setting()


@register_loss("cmd", CMDOptions)
class CMDLoss(DistillationLoss):
    """Cross-modal distillation (SEED-style soft targets): −(1/N) Σ_i Σ_j P_ij log Q_ij with
    P_ij = softmax_j(u_i·u_j / τ_T) and Q_ij = softmax_j(v_i·u_j / τ_S).

    The student reproduces the teacher's similarity structure over the anchors u_j: the batch's
    teacher embeddings, or with `negatives="bank"` every bank entry. τ_T < τ_S makes the targets
    sharper than the student's predictions. SEED's released code uses τ_S = 0.2 and τ_T = 1e-4
    against a 65,536-entry queue, where P is nearly one-hot and the loss is one-way InfoNCE; with
    batch-sized anchor sets the defaults here (0.1, 0.3) leave P some mass on the teacher's close
    neighbours, typically same-class items, which is the point of soft targets."""

    def __init__(self, options: CMDOptions = CMDOptions()):
        super().__init__()
        self.teacher_temperature = options.teacher_temperature
        self.student_temperature = options.student_temperature
        self.negatives = options.negatives
        self.uses_bank = options.negatives == "bank"

    def terms(self, student, teacher, index, bank):
        v = gather(F.normalize(student, dim=1), with_grad=True)
        teacher = gather(teacher)
        anchors = bank if self.negatives == "bank" else teacher
        targets = F.softmax(teacher @ anchors.T / self.teacher_temperature, dim=1)
        log_predictions = F.log_softmax(v @ anchors.T / self.student_temperature, dim=1)
        return {"cmd": -(targets * log_predictions).sum(dim=1).mean()}


# ---------------------------------------------------------------------------------------------
# Positives only: L2 (FitNets) and SOCKET-style statistics alignment


def squared_distance(v: Tensor, u: Tensor) -> Tensor:
    """(1/N) Σ_i ‖v_i − u_i‖²."""
    return (v - u).pow(2).sum(dim=1).mean()


def normalize_setting():
    return setting(True, "normalise the student embedding onto the teacher's unit sphere first")


@dataclass(frozen=True)
class L2Options(MethodOptions):
    normalize: bool = normalize_setting()


@register_loss("l2", L2Options)
class L2Loss(DistillationLoss):
    """FitNets-style feature regression (1/N) Σ ‖v_i − u_i‖².

    v is normalised by default, so the student lands on the teacher's unit sphere where the
    teacher's head and prototypes live; the loss is then 2 − 2·cos(v_i, u_i).
    `normalize=False` regresses the raw embedding onto u instead."""

    def __init__(self, options: L2Options = L2Options()):
        super().__init__()
        self.normalize = options.normalize

    def terms(self, student, teacher, index, bank):
        v = F.normalize(student, dim=1) if self.normalize else student
        return {"l2": squared_distance(v, teacher)}


@dataclass(frozen=True)
class SocketOptions(MethodOptions):
    stats_weight: float = setting(1.0, "weight of the spread term (0: plain L2)", minimum=0)
    normalize: bool = normalize_setting()


def spread_gap(v: Tensor, u: Tensor) -> Tensor:
    """Σ_c (σ_v,c − σ_u,c)²: the squared distance between the per-channel standard deviations of
    two batches (the spread part of the 2-Wasserstein distance between diagonal Gaussians)."""
    return (v.std(dim=0, correction=0) - u.std(dim=0, correction=0)).pow(2).sum()


@register_loss("socket", SocketOptions)
class SocketLoss(DistillationLoss):
    """SOCKET-style statistics alignment: L2 on the pairs plus matching the per-channel spread of
    the student's (normalised) embeddings to the teacher's over the batch,
    (1/N) Σ ‖v_i − u_i‖² + w · Σ_c (σ_v,c − σ_u,c)².

    The means are matched by L2 itself, exactly: (1/N) Σ ‖v_i − u_i‖² = ‖μ_v − μ_u‖² +
    (1/N) Σ ‖(v_i − μ_v) − (u_i − μ_u)‖². An earlier version added w · ‖μ_v − μ_u‖² on top, which
    weights the mean gap 1 + w times. That term does not vanish where L2 training ends: a
    student regressed onto unit teacher vectors is more concentrated than the teacher (on
    digits-depth validation, mean-vector norm 0.88 for the L2 student against the teacher's 0.68),
    and the term's gradient is the same for every item of the batch, so it adds up over the batch
    instead of cancelling: at the end of L2 training its gradient on the student's weights was
    almost as large as L2's (0.11 against 0.13) for a ninth of its value. On digits-depth with the
    ssl teacher (seed 100, validation head accuracy) the old loss at w = 1 scored 0.29 and its
    mean term alone 0.26, against 0.72 for L2 and 0.74 for L2 plus the spread term. With w = 0
    this loss is L2."""

    def __init__(self, options: SocketOptions = SocketOptions()):
        super().__init__()
        self.stats_weight = options.stats_weight
        self.normalize = options.normalize

    def terms(self, student, teacher, index, bank):
        v = F.normalize(student, dim=1) if self.normalize else student
        return {"l2": squared_distance(v, teacher), "spread": self.stats_weight * spread_gap(v, teacher)}


# ---------------------------------------------------------------------------------------------
# NCE against a memory bank: CRD


def sample_negatives(index: Tensor, bank_size: int, count: int,
                     generator: torch.Generator | None = None) -> Tensor:
    """(N, count) bank positions drawn uniformly with replacement from all but index[i] in row i:
    draw from bank_size − 1 slots and step over the positive."""
    device = generator.device if generator is not None else index.device
    draws = torch.randint(0, bank_size - 1, (len(index), count), generator=generator, device=device)
    draws = draws.to(index.device)
    return draws + (draws >= index[:, None]).long()


# Each anchor's K negatives are gathered (and projected) at once: N x K x dim numbers a step, so K
# and the projection are bounded (a 1024-wide projection at batch 512 took 15 GB).
MAX_NEGATIVES = 4096
MAX_PROJECTION_DIM = 256
MAX_NEGATIVE_NUMBERS = 262_144  # num_negatives x projection_dim, per anchor


@dataclass(frozen=True)
class CRDOptions(MethodOptions):
    temperature: float = setting(0.3, "temperature τ of the critic", above=0)
    num_negatives: int = setting(1024, "negatives K drawn from the bank per anchor", minimum=1,
                                 maximum=MAX_NEGATIVES)
    projection_dim: int | None = setting(None, "size of CRD's learned projections (none: off)",
                                         minimum=1, maximum=MAX_PROJECTION_DIM)

    def check(self) -> None:
        if self.projection_dim and self.num_negatives * self.projection_dim > MAX_NEGATIVE_NUMBERS:
            raise ValueError(f"crd: num_negatives x projection_dim ({self.num_negatives} x "
                             f"{self.projection_dim}) must be at most {MAX_NEGATIVE_NUMBERS:,}, since "
                             f"every anchor's negatives are projected at once; use fewer negatives "
                             f"or a smaller projection")


@register_loss("crd", CRDOptions)
class CRDLoss(DistillationLoss):
    """Contrastive representation distillation (Tian et al. 2020): NCE with the student as anchor,
    its own teacher embedding as the positive and K negatives drawn uniformly (with replacement,
    never the positive) from the teacher bank. CRD keeps a momentum-updated bank because its
    embeddings move during training; here the teacher is frozen and cached, so the bank is exact
    (an optional projection is applied to the drawn entries on the fly).

    CRD's critic is h = P / (P + K/M) with P = exp(s/τ)/Z and M the bank size; the loss is
    −[log h(positive) + Σ_k log(1 − h(negative_k))]. CRD fixes Z from its first batch; here Z is
    estimated for each anchor from its own K negatives (Z ≈ M · mean_k exp(s_k/τ), detached), which
    keeps the loss stateless, and M cancels: h = sigmoid(s/τ − logsumexp_k(s_k/τ)).

    `projection_dim` adds CRD's learnable linear embeddings (student and teacher sides, then L2
    normalised); off by default, because the student must stay in the teacher's embedding space for
    the teacher's head to read it."""

    uses_bank = True

    @classmethod
    def build(cls, options: CRDOptions, generator: torch.Generator | None = None):
        return cls(options, generator=generator)

    def __init__(self, options: CRDOptions = CRDOptions(), embed_dim: int = 128,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.temperature = options.temperature
        self.num_negatives = options.num_negatives
        self.generator = generator  # None: torch's global generator, seeded by the run
        self.student_projection = nn.Identity()
        self.teacher_projection = nn.Identity()
        if options.projection_dim is not None:
            self.student_projection = nn.Linear(embed_dim, options.projection_dim)
            self.teacher_projection = nn.Linear(embed_dim, options.projection_dim)

    def terms(self, student, teacher, index, bank):
        count = min(self.num_negatives, len(bank) - 1)
        if count < 1:
            raise ValueError("CRD needs a bank with at least two entries")
        negatives = bank[sample_negatives(index, len(bank), count, self.generator)]  # (N, K, d)
        v = F.normalize(self.student_projection(student), dim=1)
        positive = F.normalize(self.teacher_projection(teacher), dim=1)
        negatives = F.normalize(self.teacher_projection(negatives), dim=2)

        positive_score = (v * positive).sum(dim=1) / self.temperature  # (N,)
        negative_scores = torch.einsum("nd,nkd->nk", v, negatives) / self.temperature  # (N, K)
        # log Z + log(K/M) with Z = M · mean_k exp(s_k): the logsumexp of the negatives.
        offset = torch.logsumexp(negative_scores, dim=1, keepdim=True).detach()
        positive_logit = positive_score - offset[:, 0]
        negative_logits = negative_scores - offset
        nce = -(F.logsigmoid(positive_logit) + F.logsigmoid(-negative_logits).sum(dim=1))
        return {"crd": nce.mean()}


# ---------------------------------------------------------------------------------------------
# Ours: CMC + L2


@dataclass(frozen=True)
class CMCPlusL2Options(CMCOptions):
    l2_weight: float = setting(1.0, "λ, the weight of the L2 term", minimum=0)

    def cmc(self) -> CMCOptions:
        return CMCOptions(self.temperature, self.learn_temperature, self.negatives)


@register_loss("cmc+l2", CMCPlusL2Options)
class CMCPlusL2Loss(DistillationLoss):
    """CMC + λ·L2: L2 pulls each student embedding onto its teacher embedding, CMC pushes the other
    pairs apart. Takes CMC's options besides `l2_weight` (λ, chosen on validation)."""

    def __init__(self, options: CMCPlusL2Options = CMCPlusL2Options()):
        super().__init__()
        self.l2_weight = options.l2_weight
        self.cmc = CMCLoss(options.cmc())
        self.l2 = L2Loss()
        self.uses_bank = self.cmc.uses_bank

    def terms(self, student, teacher, index, bank):
        terms = self.cmc.terms(student, teacher, index, bank)
        terms["l2"] = self.l2_weight * self.l2.terms(student, teacher, index, bank)["l2"]
        return terms


# ---------------------------------------------------------------------------------------------
# Label-free baselines of the literature: RKD, PKT and TinyCLIP's affinity mimicking


def l2_anchor_setting():
    return setting(1.0, "weight of an L2 term that keeps the student in the teacher's space "
                        "(0: the relational loss alone)", minimum=0)


def pairwise_distances(x: Tensor) -> Tensor:
    """(N, N) Euclidean distances, exactly 0 on the diagonal (no sqrt of a rounding error)."""
    squared = (x[:, None, :] - x[None, :, :]).pow(2).sum(dim=2)
    return squared.clamp(min=1e-12).sqrt() * (1 - torch.eye(len(x), device=x.device, dtype=x.dtype))


def rkd_distance(v: Tensor, u: Tensor) -> Tensor:
    """RKD's distance term: Huber (δ = 1) between the pair distances of v and of u, each divided by
    its own mean distance, averaged over the ordered pairs i ≠ j."""
    off_diagonal = ~torch.eye(len(v), dtype=torch.bool, device=v.device)
    student, teacher = pairwise_distances(v)[off_diagonal], pairwise_distances(u)[off_diagonal]
    return F.smooth_l1_loss(student / student.mean(), teacher / teacher.mean())


def triplet_angles(x: Tensor) -> Tensor:
    """(N, N, N) cosines ⟨e(x_j − x_i), e(x_k − x_i)⟩ of the angle at vertex x_i, e the unit vector
    (the zero vector where j = i or k = i, as in the authors' code). Computed from the Gram matrix
    G, since (x_j − x_i)·(x_k − x_i) = G_jk − G_ij − G_ik + G_ii: N³ numbers, not N³·d products."""
    gram = x @ x.T
    inner = gram[None, :, :] - gram[:, :, None] - gram[:, None, :] + gram.diagonal()[:, None, None]
    lengths = pairwise_distances(x)
    inverse = torch.where(lengths > 0, 1 / lengths.clamp(min=1e-12), torch.zeros_like(lengths))
    return inner * inverse[:, :, None] * inverse[:, None, :]


def rkd_angle(v: Tensor, u: Tensor) -> Tensor:
    """RKD's angle term: Huber (δ = 1) between the triplet angles of v and of u, over all N³."""
    return F.smooth_l1_loss(triplet_angles(v), triplet_angles(u))


@dataclass(frozen=True)
class RKDOptions(MethodOptions):
    distance_weight: float = setting(25.0, "weight of the distance term (the paper's 25)", minimum=0)
    angle_weight: float = setting(50.0, "weight of the angle term (the paper's 50)", minimum=0)
    angle_items: int | None = setting(64, "the angle term's triplets come from the batch's first "
                                          "this many items (none: all)", minimum=3)
    l2_weight: float = l2_anchor_setting()
    normalize: bool = normalize_setting()


@register_loss("rkd", RKDOptions)
class RKDLoss(DistillationLoss):
    """Relational knowledge distillation (Park et al. 2019, "Relational Knowledge Distillation"):
    the student reproduces the teacher's pair distances (each set divided by its mean) and triplet
    angles within the batch, under a Huber loss, weighted 25 and 50 as in the paper.

    Both terms are invariant to rotating the student's space, so alone they leave the student
    wherever the teacher's head cannot read it. The paper adds RKD to another loss (the task's, or
    FitNets'); with no labels here, that is L2 (`l2_weight`; 0 gives RKD alone).

    The angle term costs N³: 16.8 million triplets at batch 256, about 1 s a step on two CPU cores,
    twenty times a CMC step. It therefore reads the batch's first `angle_items` items (the batch is
    shuffled, so a random subset): 64 give 262,144 triplets."""

    def __init__(self, options: RKDOptions = RKDOptions()):
        super().__init__()
        self.options = options

    def terms(self, student, teacher, index, bank):
        v = F.normalize(student, dim=1) if self.options.normalize else student
        items = self.options.angle_items
        return {"rkd_distance": self.options.distance_weight * rkd_distance(v, teacher),
                "rkd_angle": self.options.angle_weight * rkd_angle(v[:items], teacher[:items]),
                "l2": self.options.l2_weight * squared_distance(v, teacher)}


def conditional_similarities(x: Tensor) -> Tensor:
    """PKT's p(j | i): the cosine kernel (1 + cos(x_i, x_j)) / 2 over j ≠ i, normalised per row."""
    x = F.normalize(x, dim=1)
    kernel = (1 + x @ x.T) / 2 * (1 - torch.eye(len(x), device=x.device, dtype=x.dtype))
    return kernel / kernel.sum(dim=1, keepdim=True)


@dataclass(frozen=True)
class PKTOptions(MethodOptions):
    pkt_weight: float = setting(100.0, "weight of the PKT divergence", minimum=0)
    l2_weight: float = l2_anchor_setting()
    normalize: bool = normalize_setting()


@register_loss("pkt", PKTOptions)
class PKTLoss(DistillationLoss):
    """Probabilistic knowledge transfer (Passalis & Tefas 2018, "Learning Deep Representations with
    Probabilistic Knowledge Transfer"): with the cosine kernel K = (1 + cos)/2, the teacher's
    conditional distributions p(j | i) = K(u_i, u_j) / Σ_{k≠i} K(u_i, u_k) and the student's q(j | i)
    over the batch; the loss is (1/N) Σ_i KL(p(· | i) ‖ q(· | i)).

    Like RKD it is rotation invariant, so it comes with the same L2 anchor (`l2_weight`; 0: PKT
    alone). The kernel's distributions over a batch are nearly flat, so the divergence is small
    (about 0.004 against L2's 0.6 for a student at cosine 0.7 to its teacher over 256 pairs): hence
    the default weight of 100."""

    EPS = 1e-7  # the authors' code's guard against log 0

    def __init__(self, options: PKTOptions = PKTOptions()):
        super().__init__()
        self.options = options

    def terms(self, student, teacher, index, bank):
        v = F.normalize(student, dim=1) if self.options.normalize else student
        p, q = conditional_similarities(teacher), conditional_similarities(v)
        divergence = (p * torch.log((p + self.EPS) / (q + self.EPS))).sum(dim=1).mean()
        return {"pkt": self.options.pkt_weight * divergence,
                "l2": self.options.l2_weight * squared_distance(v, teacher)}


@dataclass(frozen=True)
class AffinityOptions(MethodOptions):
    temperature: float = setting(0.2, "temperature τ of both affinities", above=0)


@register_loss("affinity", AffinityOptions)
class AffinityLoss(DistillationLoss):
    """Affinity mimicking as TinyCLIP distils CLIP (Wu et al. 2023, "TinyCLIP: CLIP Distillation via
    Affinity Mimicking and Weight Inheritance"): the student's cross-modal affinities, in both
    directions, match the teacher's. TinyCLIP's student has an image and a text tower; here the
    source tower is the frozen teacher itself, and the teacher's affinity between the pair i's source
    and pair j's target is u_i·u_j (its embedding of pair j's photo). So, with softmax over rows,

        ½ [CE(softmax(U Uᵀ/τ), softmax(V Uᵀ/τ)) + CE(softmax(U Uᵀ/τ), softmax(U Vᵀ/τ))],

    one τ on both sides (TinyCLIP reuses the logit scales). The target→source half is CMD with
    τ_T = τ_S; the source→target half scores each teacher embedding against the batch's students."""

    def __init__(self, options: AffinityOptions = AffinityOptions()):
        super().__init__()
        self.temperature = options.temperature

    def terms(self, student, teacher, index, bank):
        v = gather(F.normalize(student, dim=1), with_grad=True)
        teacher = gather(teacher)
        targets = F.softmax(teacher @ teacher.T / self.temperature, dim=1)
        target_to_source = -(targets * F.log_softmax(v @ teacher.T / self.temperature, dim=1)).sum(1)
        source_to_target = -(targets * F.log_softmax(teacher @ v.T / self.temperature, dim=1)).sum(1)
        return {"affinity": (target_to_source.mean() + source_to_target.mean()) / 2}
