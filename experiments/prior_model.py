"""The weakly-supervised baselines of GLASS Tab. 5 as a subclass of GLASS: the model is told, per image, how many
objects there are (StableLSD-Dynamic, slot prior "count") and where their boxes are (StableLSD-BBox, "boxes").
GLASS itself is never told; glass.py knows nothing of this file, and `infra.checkpoint.build_model` picks the
subclass when `GLASSConfig.slot_prior` is not "none". The priors themselves are in slot_priors.py.
Checked by tests/test_glass.py (inactive slots get no attention; boxes set the initial slots; checkpoints).
"""
from __future__ import annotations

from typing import Optional

import torch

from experiments.slot_priors import BoxInit, slot_prior
from glass import GLASS, Encoded, GLASSConfig


class SlotPriorGLASS(GLASS):
    """GLASS whose slots come from ground-truth instance maps: K = objects + 1 active slots, and with "boxes" each
    active slot starts from its object's box through a small MLP (SAVi) that trains with the slots."""
    takes_slot_prior = True

    def __init__(self, config: GLASSConfig):
        if config.slot_prior == "none":
            raise ValueError("SlotPriorGLASS needs a slot prior (\"count\" or \"boxes\"); plain GLASS has none")
        super().__init__(config)
        self.box_init = BoxInit(self.config.slots.dim) if config.slot_prior == "boxes" else None

    def encode(self, images: torch.Tensor, slots: Optional[torch.Tensor] = None,
               instance: Optional[torch.Tensor] = None, features: Optional[torch.Tensor] = None,
               slot_mask: Optional[torch.Tensor] = None) -> Encoded:
        """As GLASS.encode, with slot_mask (and with "boxes" the initial slots) from `instance` (B, H, W)."""
        if instance is None:
            raise ValueError(f"slot prior {self.config.slot_prior!r} needs ground-truth instance maps (a dataset "
                             f"with 'instance' items, e.g. experiments.baseline_data.write_oracle_dataset)")
        prior = slot_prior(instance, self.config.slots.num_slots)
        if self.box_init is not None:
            slots = self.box_init(prior.boxes)  # (B, K, D)
        return super().encode(images, slots=slots, features=features, slot_mask=prior.active)

    def trainable_parts(self, phase: int) -> dict:
        """GLASS's parts and, with "boxes", the box MLP (it trains with the slots)."""
        parts = super().trainable_parts(phase)
        return {**parts, "box_init": self.box_init} if self.box_init is not None else parts
