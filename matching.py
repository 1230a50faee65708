"""Slot matching and the semantic guidance loss (GLASS §4 "Slot matching", Eq. 2).

GLASS guides slot attention with pseudo ground-truth semantic masks. Each slot's hard mask (argmax over slots of
its attention) is compared with each segment of the pseudo mask by IoU; the Hungarian algorithm picks the
one-to-one assignment with the largest total IoU (Eq. 2); matched slots are then pulled towards their segment with
a binary cross-entropy on their soft attention masks. Unmatched slots get no semantic target.

    IoU(k, f)   = |M_k ∩ G_f| / |M_k ∪ G_f|   over valid pixels                 (B, K, F)
    σ*          = argmax_σ Σ_f IoU(σ(f), f)     (one slot per segment at most)   (Eq. 2)
    L_semantic  = mean over matched (k, f) and valid pixels of BCE(A_k, G_f)

Shape legend: B batch, K slots, F segments, H×W mask resolution.

This file imports only torch and scipy, so it can be copied into another project on its own.
Checked by tests/test_matching.py: Hungarian optimality against brute force over all assignments (square and
rectangular both ways), empty segments, ignore pixels, gradient only through the soft masks.

Public API:
    iou_matrix(pred, target, valid=None) -> (B, K, F)
    hungarian_match(iou) -> Match(slot_idx, segment_idx)
    segments_from_semantic(mask, num_classes, background_segment=True, ignore_index=255) -> Segments
    semantic_loss(soft_masks, segments, segment_present, valid=None) -> SemanticLoss   (the plain per-pair form)
    semantic_loss_batched(...)   the same, every pair at once (what training runs)
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment


def _check_masks(name: str, x: torch.Tensor, expected: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor of shape {expected}, got {shape}")


class Match(NamedTuple):
    slot_idx: torch.Tensor  # (P,) long, the matched slots
    segment_idx: torch.Tensor  # (P,) long, the segment each of them is matched to; P = min(K, F)


class Segments(NamedTuple):
    masks: torch.Tensor  # (B, F, H, W) bool, one binary mask per class id (F = num_classes + 1, id 0 = background)
    present: torch.Tensor  # (B, F) bool, True where the segment exists in the image and takes part in matching
    valid: torch.Tensor  # (B, H, W) bool, False on ignore pixels


class SemanticLoss(NamedTuple):
    loss: torch.Tensor  # () mean of the per-image losses over images that have at least one segment
    per_image: torch.Tensor  # (B,) loss of each image, 0 where absent
    present: torch.Tensor  # (B,) bool, False for images without any segment (no semantic target)
    matches: list  # B entries of Match (empty for absent images)


def iou_matrix(pred: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """IoU between every predicted mask and every target mask.

    Args:
        pred: (B, K, H, W) binary masks (bool or 0/1).
        target: (B, F, H, W) binary masks.
        valid: optional (B, H, W) bool; pixels where it is False count neither in intersections nor in unions.
    Returns:
        (B, K, F) IoU; a pair whose union is empty has IoU 0.
    """
    _check_masks("pred", pred, "(B, K, H, W)")
    _check_masks("target", target, "(B, F, H, W)")
    if pred.shape[0] != target.shape[0] or pred.shape[2:] != target.shape[2:]:
        raise ValueError(f"pred (B, K, H, W) and target (B, F, H, W) must share B, H, W; "
                         f"got {tuple(pred.shape)} and {tuple(target.shape)}")
    p = pred.bool()
    t = target.bool()
    if valid is not None:
        if tuple(valid.shape) != (pred.shape[0], *pred.shape[2:]):
            raise ValueError(f"valid must have shape (B, H, W) = {(pred.shape[0], *pred.shape[2:])}, "
                             f"got {tuple(valid.shape)}")
        p = p & valid[:, None].bool()
        t = t & valid[:, None].bool()
    p = p.flatten(2).float()  # (B, K, HW)
    t = t.flatten(2).float()  # (B, F, HW)
    inter = torch.einsum("bkn,bfn->bkf", p, t)  # (B, K, F)
    union = p.sum(-1)[:, :, None] + t.sum(-1)[:, None, :] - inter  # (B, K, F)
    return torch.where(union > 0, inter / union.clamp(min=1.0), torch.zeros_like(inter))


def hungarian_match(iou: torch.Tensor) -> Match:
    """One-to-one assignment of slots to segments maximising the total IoU (Eq. 2).

    Args:
        iou: (K, F) IoU matrix of one image. K ≥ F and K < F both work; min(K, F) pairs are returned.
    Returns:
        Match(slot_idx, segment_idx), long tensors on iou's device, sorted by slot; no gradient flows.
    """
    if not isinstance(iou, torch.Tensor) or iou.dim() != 2:
        shape = tuple(iou.shape) if isinstance(iou, torch.Tensor) else type(iou).__name__
        raise ValueError(f"iou must be a tensor of shape (K, F), got {shape}")
    rows, cols = linear_sum_assignment(iou.detach().float().cpu().numpy(), maximize=True)
    return Match(slot_idx=torch.as_tensor(rows, dtype=torch.long, device=iou.device),
                 segment_idx=torch.as_tensor(cols, dtype=torch.long, device=iou.device))


def segments_from_semantic(mask: torch.Tensor, num_classes: int, background_segment: bool = True,
                           ignore_index: int = 255) -> Segments:
    """Split a semantic mask (B, H, W) of class ids (0 = background, 1..C, `ignore_index`) into binary segments.

    Segment f is class id f, so F = num_classes + 1. Background takes part in matching only when
    `background_segment` (the default: one slot learns to hold the background).
    """
    if not isinstance(mask, torch.Tensor) or mask.dim() != 3 or torch.is_floating_point(mask):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be an integer tensor of shape (B, H, W), got {shape}")
    mask = mask.long()
    valid = mask != ignore_index  # (B, H, W)
    bad = valid & ((mask < 0) | (mask > num_classes))
    if bool(bad.any()):
        raise ValueError(f"mask holds ids outside 0..{num_classes} and {ignore_index}")
    ids = torch.arange(num_classes + 1, device=mask.device)
    masks = (mask[:, None] == ids[None, :, None, None]) & valid[:, None]  # (B, F, H, W)
    present = masks.flatten(2).any(-1)  # (B, F)
    if not background_segment:
        present[:, 0] = False
    return Segments(masks=masks, present=present, valid=valid)


def _check_loss_inputs(soft_masks, segments, segment_present, valid) -> torch.Tensor:
    """Check the semantic loss's arguments; returns `valid` (all True when None)."""
    _check_masks("soft_masks", soft_masks, "(B, K, H, W)")
    _check_masks("segments", segments, "(B, F, H, W)")
    b, k, h, w = soft_masks.shape
    if segments.shape[0] != b or segments.shape[2:] != soft_masks.shape[2:]:
        raise ValueError(f"segments must have shape ({b}, F, {h}, {w}), got {tuple(segments.shape)}")
    if tuple(segment_present.shape) != tuple(segments.shape[:2]):
        raise ValueError(f"segment_present must have shape {tuple(segments.shape[:2])}, "
                         f"got {tuple(segment_present.shape)}")
    return torch.ones(b, h, w, dtype=torch.bool, device=soft_masks.device) if valid is None else valid


def semantic_loss(soft_masks: torch.Tensor, segments: torch.Tensor, segment_present: torch.Tensor,
                  valid: Optional[torch.Tensor] = None, eps: float = 1e-6) -> SemanticLoss:
    """The semantic guidance loss of GLASS, plainly: per image, match slots to segments on hard masks (Eq. 2), then
    the BCE between each matched slot's soft mask and its segment, averaged over valid pixels, then over pairs.

    Args:
        soft_masks: (B, K, H, W) slot attention masks in [0, 1] (softmax over slots), at the segments' resolution.
        segments: (B, F, H, W) binary target segments.
        segment_present: (B, F) bool, which segments take part (absent ones are never matched).
        valid: optional (B, H, W) bool; ignore pixels are excluded from IoU and from the BCE average.
    Returns:
        SemanticLoss; `present` is False (and the loss 0) for an image with no present segment.
    """
    valid = _check_loss_inputs(soft_masks, segments, segment_present, valid)
    hard = F.one_hot(soft_masks.detach().argmax(dim=1), soft_masks.shape[1]).permute(0, 3, 1, 2).bool()  # (B, K, H, W)
    per_image, matches, present = [], [], []
    for i in range(soft_masks.shape[0]):
        seg_ids = segment_present[i].nonzero().flatten()  # (F_i,) the segments of image i
        if len(seg_ids) == 0 or not bool(valid[i].any()):  # no target: no semantic loss for this image
            matches.append(Match(seg_ids[:0], seg_ids[:0]))
            per_image.append(soft_masks.sum() * 0.0)
            present.append(False)
            continue
        m = hungarian_match(iou_matrix(hard[i:i + 1], segments[i:i + 1], valid[i:i + 1])[0][:, seg_ids])  # Eq. 2
        pairs = []
        for slot, seg in zip(m.slot_idx.tolist(), seg_ids[m.segment_idx].tolist()):
            pred = soft_masks[i, slot][valid[i]].float().clamp(eps, 1.0 - eps)  # (P_valid,) the slot's soft mask
            target = segments[i, seg][valid[i]].float()  # (P_valid,) its segment
            pairs.append(F.binary_cross_entropy(pred, target))  # mean over valid pixels
        per_image.append(torch.stack(pairs).mean())  # mean over matched pairs
        matches.append(Match(slot_idx=m.slot_idx, segment_idx=seg_ids[m.segment_idx]))
        present.append(True)
    per_image, present = torch.stack(per_image), torch.tensor(present, device=soft_masks.device)
    loss = per_image[present].mean() if bool(present.any()) else soft_masks.sum() * 0.0
    return SemanticLoss(loss=loss, per_image=per_image, present=present, matches=matches)


def semantic_loss_batched(soft_masks: torch.Tensor, segments: torch.Tensor, segment_present: torch.Tensor,
                          valid: Optional[torch.Tensor] = None, eps: float = 1e-6) -> SemanticLoss:
    """`semantic_loss` with the BCE of every matched pair of the batch computed at once (what training uses: the
    same values and gradients, checked in tests/test_matching.py; it also works under bf16 autocast)."""
    valid = _check_loss_inputs(soft_masks, segments, segment_present, valid)
    b, k = soft_masks.shape[:2]
    hard = F.one_hot(soft_masks.detach().argmax(dim=1), k).permute(0, 3, 1, 2).bool()  # (B, K, H, W), argmax over slots
    iou = iou_matrix(hard, segments, valid)  # (B, K, F)

    present = segment_present.any(dim=1) & valid.flatten(1).any(dim=1)  # (B,) images with a target
    # what the CPU Hungarian needs, in one device-to-host transfer per batch (not three syncs per image)
    f = segment_present.shape[1]
    packed = torch.cat([iou.detach().float().flatten(), segment_present.flatten().float(), present.float()]).cpu()
    iou_cpu = packed[:b * k * f].view(b, k, f)
    present_cpu = packed[b * k * f + b * f:].bool()  # (B,)
    seg_present_cpu = packed[b * k * f:b * k * f + b * f].view(b, f).bool()  # (B, F)
    matches_cpu, pair_image = [], []
    for i in range(b):
        seg_ids = seg_present_cpu[i].nonzero().flatten()  # (F_i,)
        if not bool(present_cpu[i]):
            empty = torch.zeros(0, dtype=torch.long)
            matches_cpu.append(Match(empty, empty))
            continue
        m = hungarian_match(iou_cpu[i][:, seg_ids])  # (K, F_i) → min(K, F_i) pairs
        matches_cpu.append(Match(slot_idx=m.slot_idx, segment_idx=seg_ids[m.segment_idx]))
        pair_image.append(torch.full_like(m.slot_idx, i))
    device = soft_masks.device
    slot_all = torch.cat([m.slot_idx for m in matches_cpu])  # (P,) matched pairs of the batch, on the CPU
    seg_all = torch.cat([m.segment_idx for m in matches_cpu])
    img_all = torch.cat(pair_image) if pair_image else slot_all
    pairs_dev = torch.stack([slot_all, seg_all, img_all]).to(device)  # (3, P): one host-to-device copy
    counts = [len(m.slot_idx) for m in matches_cpu]
    matches = [Match(s_, g_) for s_, g_ in zip(pairs_dev[0].split(counts), pairs_dev[1].split(counts))]
    per_image = soft_masks.new_zeros(b)
    if pair_image:  # the BCE of every matched pair of the batch at once
        img = pairs_dev[2]  # (P,) the image of each pair
        # at least float32: in bf16, 1 − ε rounds to 1 and a confident wrong slot would cost log 0
        dtype = torch.promote_types(soft_masks.dtype, torch.float32)
        pred = soft_masks[img, pairs_dev[0]].to(dtype).clamp(eps, 1.0 - eps)  # (P, H, W)
        target = segments[img, pairs_dev[1]].to(dtype)  # (P, H, W)
        bce = -(target * pred.log() + (1.0 - target) * (1.0 - pred).log())  # (P, H, W); no autocast rule applies
        pair_sum = (bce * valid[img]).flatten(1).sum(dim=1)  # (P,) over valid pixels
        pairs = torch.bincount(img, minlength=b).to(pair_sum.dtype)  # (B,) matched pairs per image
        n_valid = valid.flatten(1).sum(dim=1).to(pair_sum.dtype)  # (B,)
        per_image = pair_sum.new_zeros(b).index_add(0, img, pair_sum)  # (B,)
        per_image = per_image / (n_valid * pairs).clamp(min=1.0)  # mean over pairs and valid pixels
    loss = per_image[present].mean() if bool(present_cpu.any()) else soft_masks.sum() * 0.0
    return SemanticLoss(loss=loss, per_image=per_image, present=present, matches=matches)
