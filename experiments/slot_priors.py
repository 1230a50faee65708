"""What the weakly-supervised baselines of GLASS Tab. 5 are told, and how their slots use it. GLASS never is.

Two rows of Tab. 5 train Stable-LSD (the slot module with the diffusion decoder alone) with ground truth about
the objects of each image:

    StableLSD-Dynamic   slot_prior "count": K = objects + 1 active slots (one for the background); the other
                        slots are switched off in slot attention's softmax (`slot_mask`)
    StableLSD-BBox      slot_prior "boxes": the same, and each active slot starts from its object's box through
                        a small MLP, SAVi's conditional initialisation (`BoxInit`); the background slot's box is
                        the whole image

Both read ground-truth instance maps (B, H, W), 0 = background, objects 1..n. `GLASS.encode` calls
`slot_prior` and `BoxInit` when `GLASSConfig.slot_prior` is not "none"; the slot module itself knows nothing of
them. Checked by tests/test_glass.py (hand-computed boxes; inactive slots get no attention; boxes set the
initial slots).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

SLOT_PRIORS = ("none", "count", "boxes")  # GLASSConfig.slot_prior: "none" is GLASS and every other row


def mask_box(mask: torch.Tensor) -> torch.Tensor:
    """The box (x0, y0, x1, y1) in [0, 1] of a non-empty boolean mask (H, W): pixel edges, so one pixel at (0, 0)
    of an 8×8 mask is (0, 0, 1/8, 1/8)."""
    h, w = mask.shape
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return torch.stack([xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h]).float()


class SlotPrior(NamedTuple):
    boxes: torch.Tensor  # (B, K, 4) (x0, y0, x1, y1) in [0, 1]; zeros for inactive slots
    active: torch.Tensor  # (B, K) bool: the background slot and one slot per object


def slot_prior(instance: torch.Tensor, num_slots: int) -> SlotPrior:
    """Ground-truth instance maps (B, H, W) → the prior of K slots: slot 0 is the background with the whole image,
    slot j the object with the j-th smallest id; at most K − 1 objects are kept."""
    if instance.dim() != 3 or torch.is_floating_point(instance):
        raise ValueError(f"instance must be an integer tensor of shape (B, H, W), got {tuple(instance.shape)}")
    b = instance.shape[0]
    boxes = torch.zeros(b, num_slots, 4)
    boxes[:, 0] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    active = torch.zeros(b, num_slots, dtype=torch.bool)
    active[:, 0] = True
    for i in range(b):
        for j, obj in enumerate([int(v) for v in instance[i].unique() if v > 0][:num_slots - 1], start=1):
            boxes[i, j] = mask_box(instance[i] == obj)
            active[i, j] = True
    return SlotPrior(boxes=boxes.to(instance.device), active=active.to(instance.device))


class BoxInit(nn.Module):
    """StableLSD-BBox's initial slots: an MLP of each slot's box, (B, K, 4) → (B, K, D) (SAVi)."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(4, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))

    def forward(self, boxes: torch.Tensor) -> torch.Tensor:
        if boxes.dim() != 3 or boxes.shape[-1] != 4:
            raise ValueError(f"boxes must have shape (B, K, 4), got {tuple(boxes.shape)}")
        return self.mlp(boxes)  # (B, K, D)
