"""Object-discovery metrics of GLASS §5: FG-ARI, mBO, mIoU, and the SO/PO/GO slot binding shares.

Every metric takes integer label maps and returns one value per image:
    pred: (B, H, W) slot ids (argmax over slots of the resized slot masks)
    true: (B, H, W) ground truth, 0 = background, 1.. = segments (instances or classes), `ignore_index` = ignored

    FG-ARI  adjusted Rand index between pred and true over foreground pixels (true ∉ {0, ignore})
    mBO     mean over GT segments of the best IoU with any slot (a slot may serve several segments)
    mIoU    Hungarian matching of GT segments to slots maximising the total IoU; an unmatched segment scores 0;
            mean over the segments of the image
mBO_i / mIoU_i use instance masks, mBO_c / mIoU_c semantic masks: the functions are the same.

Protocol switches (report them with every number):
    background_segment  False (default): background is not a GT segment (DINOSAUR / SPOT protocol);
                        True: it is one (the protocol of the GLASS authors' released evaluation).
    ignore_index        pixels with this GT label count nowhere (neither in the slot nor in the segment).
    Images without any GT segment get NaN from mbo/miou (skipped); `summarize` averages the rest and counts them.

Shape legend: B batch, H×W label maps, S slot ids, G GT segments.
This file imports only torch and scipy, so it can be copied into another project on its own.
Checked by tests/test_metrics.py: hand-computed cases and random cases against direct scipy computations.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from scipy.optimize import linear_sum_assignment


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------

def _check_labels(pred: torch.Tensor, true: torch.Tensor) -> None:
    for name, x in (("pred", pred), ("true", true)):
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be an integer tensor of shape (B, H, W), got {shape}")
        if torch.is_floating_point(x) or x.dtype == torch.bool:
            raise ValueError(f"{name} must be an integer tensor of shape (B, H, W), got dtype {x.dtype}")
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must both be (B, H, W) of one shape, got {tuple(pred.shape)} "
                         f"and {tuple(true.shape)}")
    if bool((pred < 0).any()):
        raise ValueError("pred holds negative slot ids")


def _contingency(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pixel counts of every (a-label, b-label) pair: (max a + 1, max b + 1). a, b: (P,) non-negative ints."""
    na = int(a.max()) + 1 if a.numel() else 1
    nb = int(b.max()) + 1 if b.numel() else 1
    flat = a.long() * nb + b.long()
    return torch.bincount(flat, minlength=na * nb).reshape(na, nb).double()  # (A, Bb)


def _segment_ious(pred: torch.Tensor, true: torch.Tensor, background_segment: bool,
                  ignore_index: int) -> torch.Tensor:
    """IoU between each GT segment and each slot of one image: (G, S). pred, true: (H, W)."""
    keep = true != ignore_index
    p, t = pred[keep].long(), true[keep].long()
    if p.numel() == 0:
        return torch.zeros(0, 1, dtype=torch.float64)
    counts = _contingency(t, p)  # (T, S) pixel counts, rows = GT labels
    labels = torch.arange(counts.shape[0])
    rows = counts.sum(1) > 0
    if not background_segment:
        rows &= labels != 0
    inter = counts[rows]  # (G, S)
    union = counts.sum(1)[rows][:, None] + counts.sum(0)[None, :] - inter  # (G, S)
    return inter / union.clamp(min=1.0)


def _comb2(x: torch.Tensor) -> torch.Tensor:
    return x * (x - 1) / 2


# ---------------------------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------------------------

def ari(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Adjusted Rand index (Hubert & Arabie) of two flat labelings (P,); 1.0 where it is undefined.

    ARI = (Σ_ij C(n_ij, 2) − E) / (½(Σ_i C(a_i, 2) + Σ_j C(b_j, 2)) − E),  E = Σ_i C(a_i, 2)·Σ_j C(b_j, 2) / C(P, 2).
    The denominator is 0 when both labelings are a single cluster, all singletons, or P < 2: ARI is 1.0 there.
    """
    counts = _contingency(true.flatten(), pred.flatten())  # (T, S)
    n = counts.sum()
    sum_ij = _comb2(counts).sum()
    sum_a = _comb2(counts.sum(1)).sum()
    sum_b = _comb2(counts.sum(0)).sum()
    total = _comb2(n)
    expected = sum_a * sum_b / total if total > 0 else torch.tensor(0.0, dtype=torch.float64)
    denominator = 0.5 * (sum_a + sum_b) - expected
    if total == 0 or denominator == 0:
        return 1.0
    return float((sum_ij - expected) / denominator)


def fg_ari(pred: torch.Tensor, true: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """FG-ARI per image (B,): ARI over pixels whose GT is foreground (not 0, not `ignore_index`).

    Where ARI is undefined (no or one foreground pixel, or both labelings a single cluster) it is 1.0, as in the
    reference implementation of the multi-object datasets; use `has_segments` to leave images without objects out.
    """
    _check_labels(pred, true)
    out = torch.empty(pred.shape[0], dtype=torch.float64)
    for i in range(pred.shape[0]):
        fg = (true[i] != 0) & (true[i] != ignore_index)
        out[i] = ari(pred[i][fg], true[i][fg])
    return out


def mbo(pred: torch.Tensor, true: torch.Tensor, background_segment: bool = False,
        ignore_index: int = 255) -> torch.Tensor:
    """Mean best overlap per image (B,): mean over GT segments of max over slots of IoU. NaN: no GT segment."""
    _check_labels(pred, true)
    out = torch.full((pred.shape[0],), float("nan"), dtype=torch.float64)
    for i in range(pred.shape[0]):
        iou = _segment_ious(pred[i], true[i], background_segment, ignore_index)  # (G, S)
        if iou.shape[0] > 0:
            out[i] = iou.max(dim=1).values.mean()  # best slot for every segment; slots may be reused
    return out


def miou(pred: torch.Tensor, true: torch.Tensor, background_segment: bool = False,
         ignore_index: int = 255) -> torch.Tensor:
    """Hungarian mIoU per image (B,): one-to-one GT-segment ↔ slot matching maximising total IoU; unmatched
    segments (more segments than slots) score 0. NaN: no GT segment."""
    _check_labels(pred, true)
    out = torch.full((pred.shape[0],), float("nan"), dtype=torch.float64)
    for i in range(pred.shape[0]):
        iou = _segment_ious(pred[i], true[i], background_segment, ignore_index)  # (G, S)
        if iou.shape[0] > 0:
            rows, cols = linear_sum_assignment(iou.numpy(), maximize=True)
            out[i] = float(iou[rows, cols].sum()) / iou.shape[0]  # unmatched segments add 0
    return out


def has_segments(true: torch.Tensor, background_segment: bool = False, ignore_index: int = 255) -> torch.Tensor:
    """(B,) bool: which images hold at least one GT segment under the protocol."""
    keep = true != ignore_index
    if not background_segment:
        keep &= true != 0
    return keep.flatten(1).any(dim=1)


class Summary(NamedTuple):
    mean: float  # mean over the images that were scored
    count: int  # number of images scored
    skipped: int  # number of images skipped (NaN: no GT segment)


def summarize(values: torch.Tensor) -> Summary:
    """Average per-image values (B,), skipping NaN (images without a GT segment), and say how many were skipped."""
    ok = ~torch.isnan(values)
    n = int(ok.sum())
    return Summary(mean=float(values[ok].mean()) if n else float("nan"), count=n, skipped=int((~ok).sum()))


class SlotBinding(NamedTuple):
    so: torch.Tensor  # (B,) share of the image's non-empty slots on a single object
    po: torch.Tensor  # (B,) share on part of an object
    go: torch.Tensor  # (B,) share on a group of objects
    bg: torch.Tensor  # (B,) share on background
    num_slots: torch.Tensor  # (B,) number of non-empty slots counted


def so_po_go(pred: torch.Tensor, true: torch.Tensor, cover: float = 0.5, ignore_index: int = 255) -> SlotBinding:
    """What each slot binds to: a single object (SO), part of an object (PO), a group of objects (GO), background.

    No public code defines these categories, so this is the rule used here, decided per non-empty slot s
    (ignore pixels removed) against the GT instances o:
        1. background  if at most half of the slot's pixels lie on foreground;
        2. otherwise count the objects the slot *covers*: |s ∩ o| ≥ `cover`·|o| (default: most of the object);
           GO if it covers two or more, SO if exactly one, PO if none (the slot sits on foreground but holds no
           object's majority: a part).
    Why: "covering most of an object" is the natural reading of binding to it; a slot holding most of two objects
    is a group; a foreground slot holding no object's majority is a fragment. The shares of one image sum to 1.
    """
    _check_labels(pred, true)
    b = pred.shape[0]
    shares = torch.zeros(b, 4, dtype=torch.float64)  # SO, PO, GO, BG
    counted = torch.zeros(b, dtype=torch.long)
    for i in range(b):
        keep = true[i] != ignore_index
        p, t = pred[i][keep].long(), true[i][keep].long()
        if p.numel() == 0:
            continue
        counts = _contingency(t, p)  # (T, S), row 0 = background
        slot_size = counts.sum(0)  # (S,)
        obj_size = counts.sum(1)  # (T,)
        for s in torch.nonzero(slot_size > 0).flatten().tolist():
            fg_pixels = counts[1:, s].sum()
            if fg_pixels <= 0.5 * slot_size[s]:
                kind = 3
            else:
                covered = int(((counts[1:, s] >= cover * obj_size[1:]) & (obj_size[1:] > 0)).sum())
                kind = 2 if covered >= 2 else (0 if covered == 1 else 1)
            shares[i, kind] += 1
            counted[i] += 1
        shares[i] /= max(int(counted[i]), 1)
    return SlotBinding(so=shares[:, 0], po=shares[:, 1], go=shares[:, 2], bg=shares[:, 3], num_slots=counted)


# ---------------------------------------------------------------------------------------------------------------
# image metrics (conditional generation, §5)
# ---------------------------------------------------------------------------------------------------------------

def score_masks(pred: torch.Tensor, inst: torch.Tensor, sem: torch.Tensor, background_segment: bool = False) -> dict:
    """Every discovery metric of label maps pred (B, H, W) against GT instance and semantic masks, each (B,):
    mIoU_i, mBO_i, mIoU_c, mBO_c, FG-ARI over all images and over images with ≥ 2 objects (NaN otherwise), and the
    SO / PO / GO / background shares of the slots."""
    kw = {"background_segment": background_segment}
    out = {"miou_i": miou(pred, inst, **kw), "mbo_i": mbo(pred, inst, **kw),
           "miou_c": miou(pred, sem, **kw), "mbo_c": mbo(pred, sem, **kw), "fg_ari": fg_ari(pred, inst)}
    num_objects = torch.tensor([int(((t.unique() > 0) & (t.unique() != 255)).sum()) for t in inst])  # (B,)
    # FG-ARI of a single-object scene is 1 only if every object pixel lands in one slot: masks upsampled from a
    # token grid leak edge pixels, so such scenes score 0 for every model. FG-ARI over scenes with ≥ 2 objects
    # measures what FG-ARI is for: whether different objects land in different slots.
    out["fg_ari_multi"] = torch.where(num_objects >= 2, out["fg_ari"], torch.full_like(out["fg_ari"], float("nan")))
    b = so_po_go(pred, inst)
    out.update(so=b.so, po=b.po, go=b.go, bg=b.bg)
    return out


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR per image (B,) of images (B, C, H, W) in [0, data_range]: 10·log10(range² / MSE)."""
    if pred.dim() != 4 or pred.shape != target.shape:
        raise ValueError(f"pred and target must both be (B, C, H, W), got {tuple(pred.shape)}, {tuple(target.shape)}")
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(1)  # (B,)
    return 10.0 * torch.log10(data_range ** 2 / mse.clamp(min=1e-12))
