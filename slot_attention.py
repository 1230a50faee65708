"""Slot attention (GLASS §3, Eq. 1) and the slot module GLASS wraps around it.

Slot attention (Locatello et al., 2020) turns a set of N input tokens into K slot vectors by letting the slots
compete for the tokens: the attention logits are normalised with a softmax **over the slot axis**, so every token
distributes one unit of attention among the slots. Each slot is then updated with the weighted mean of the
values of the tokens it won (Eq. 1 of the GLASS paper), through a GRU and a residual MLP, for T iterations.

    A      = softmax_K( k(LN(X)) · q(LN(S))ᵀ / sqrt(D) )      # (B, K, N), sums to 1 over K   (Eq. 1)
    W      = (A + ε) / Σ_N (A + ε)                             # weighted mean over the N tokens
    U      = W · v(LN(X))                                      # (B, K, D)
    S      = GRU(U, S_prev);  S = S + MLP(LN(S))

`SlotAttention.step` is that loop as written, the readable form: keys, values and queries, softmax over slots,
weighted mean, GRU and MLP, each line next to its equation (`folded=False` runs it). The default, `step_folded`,
runs the same arithmetic in a different order and never builds the keys and values. k and v are linear maps without
bias, so

    q · k(x_n)        = q · (W_k x_n) = (W_kᵀ q) · x_n          # carry the K queries to the input space
    Σ_n w_n v(x_n)    = W_v (Σ_n w_n x_n)                       # average the inputs, then project once

That skips the two (B, N, D) projections and their backward, which at GLASS's shapes cost more than all T
iterations together. tests/test_slot_attention.py holds the two paths to each other (outputs and gradients).

Shape legend: B batch, K slots, N = h·w input tokens, D slot width, D_in input width.

This file imports nothing but torch, so it can be copied into another project on its own.
Checked by tests/test_slot_attention.py: shapes, attention sums to one over slots, slot permutation equivariance,
input order invariance, gradient to every parameter, parity of both paths with a naive per-sample loop and with
each other.

Public API:
    SlotAttention(num_slots, dim, input_dim=None, iters=3, eps=1e-8, mlp_hidden=None, folded=True, ...)
        .forward(inputs, slots=None, slot_mask=None, iters=None)
            -> SlotAttentionOutput(slots, attn, init, attn_per_iter)
    GLASSSlotConfig, GLASSSlotModule          the GLASS configuration (7 slots, 5 iterations, width 768, ...)
        .forward(features, slots=None) -> GLASSSlotOutput(slots, attn, cond, init, attn_per_iter)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import nn


# ---------------------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------------------

def _check_tensor(name: str, x: torch.Tensor, rank: int, expected: str) -> None:
    """Raise ValueError with the expected shape when `x` is not a floating tensor of the given rank."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {expected}, got {type(x).__name__}")
    if x.dim() != rank:
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} must be a floating-point tensor of shape {expected}, got dtype {x.dtype}")


def build_grid(height: int, width: int, device=None, dtype=None, centres: bool = True) -> torch.Tensor:
    """Cartesian positional grid (x, y, 1 − x, 1 − y) with x, y in [0, 1]: at cell centres ((i + ½) / n, the
    authors' code) or, with centres=False, at the cell edges spread over [0, 1] (linspace(0, 1, n)).

    Returns (height·width, 4), row-major: token n = row·width + col, the order of ViT patch tokens.
    """
    def axis(n: int) -> torch.Tensor:
        if centres:
            return (torch.arange(n, device=device, dtype=dtype or torch.float32) + 0.5) / n
        return torch.linspace(0.0, 1.0, n, device=device, dtype=dtype)
    ys, xs = axis(height), axis(width)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (h, w) each
    grid = torch.stack([gx, gy, 1.0 - gx, 1.0 - gy], dim=-1)  # (h, w, 4)
    return grid.reshape(height * width, 4)  # (N, 4)


class SlotAttentionOutput(NamedTuple):
    slots: torch.Tensor  # (B, K, D) slots after the last iteration
    attn: torch.Tensor  # (B, K, N) last iteration's softmax over slots, before ε: the slot masks
    init: torch.Tensor  # (B, K, D) the initial slots that were used (sampled or given)
    attn_per_iter: torch.Tensor  # (T, B, K, N) every iteration's attention; the last one is `attn`


# ---------------------------------------------------------------------------------------------------------------
# the module of Eq. 1
# ---------------------------------------------------------------------------------------------------------------

class SlotAttention(nn.Module):
    """Slot attention of Locatello et al. (2020); GLASS §3, Eq. 1. No positional encoding inside.

    Args:
        num_slots: K, the number of slots sampled when `forward` is not given initial slots.
        dim: D, the slot width (also the query/key/value width).
        input_dim: D_in, the width of the input tokens (default: `dim`).
        iters: T, the number of attention iterations.
        eps: ε added to the attention before the weighted mean (keeps empty slots finite).
        mlp_hidden: hidden width of the residual slot MLP (default: `dim`).
        learned_init: if True, each slot has its own learned initial vector (no sampling); otherwise slots are
            sampled from N(μ, exp(log σ)²) with μ and log σ learned and shared by all slots.
        gaussian_init: how μ and log σ start: "xavier" (Xavier-uniform, σ ≈ 1: nearly independent initial slots;
            the authors' code) or "small" (μ ~ N(0, 1/D), σ = D^-½: strongly correlated initial slots).
        bilevel: if True, the slots entering the last iteration are detached and a straight-through gradient
            is routed to the initial slots (the "bi-level" trick of BO-QSA); off in GLASS's released config.
        folded: True (the default) runs `step_folded` (the same numbers up to float order, about 2× faster at
            GLASS's shapes); False runs the textbook `step`, the readable form. See the module docstring.
    """

    def __init__(self, num_slots: int, dim: int, input_dim: Optional[int] = None, iters: int = 3,
                 eps: float = 1e-8, mlp_hidden: Optional[int] = None, learned_init: bool = False,
                 bilevel: bool = False, gaussian_init: str = "xavier",
                 folded: bool = True):
        super().__init__()
        if num_slots < 1 or dim < 1 or iters < 1:
            raise ValueError(f"num_slots, dim and iters must be positive, got {num_slots}, {dim}, {iters}")
        input_dim = dim if input_dim is None else input_dim
        mlp_hidden = dim if mlp_hidden is None else mlp_hidden
        self.num_slots, self.dim, self.input_dim = num_slots, dim, input_dim
        self.iters, self.eps, self.scale = iters, eps, dim ** -0.5
        self.learned_init, self.bilevel, self.folded = learned_init, bilevel, folded

        if learned_init:
            self.slots_init = nn.Parameter(torch.randn(1, num_slots, dim) * dim ** -0.5)  # (1, K, D)
        else:
            self.slots_mu = nn.Parameter(torch.empty(1, 1, dim))  # μ, shared by all slots
            self.slots_log_sigma = nn.Parameter(torch.empty(1, 1, dim))  # log σ
            if gaussian_init == "xavier":  # U(±√(3/D)): μ ≈ 0, σ ≈ 1 (the authors' code)
                nn.init.xavier_uniform_(self.slots_mu)
                nn.init.xavier_uniform_(self.slots_log_sigma)
            elif gaussian_init == "small":
                nn.init.normal_(self.slots_mu, std=dim ** -0.5)
                nn.init.constant_(self.slots_log_sigma, math.log(dim ** -0.5))
            else:
                raise ValueError(f"gaussian_init must be 'xavier' or 'small', got {gaussian_init!r}")

        self.norm_inputs = nn.LayerNorm(input_dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(input_dim, dim, bias=False)  # no bias (Locatello et al.), which lets `folded` work
        self.to_v = nn.Linear(input_dim, dim, bias=False)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_hidden), nn.ReLU(inplace=True), nn.Linear(mlp_hidden, dim))

    def sample_init(self, batch_size: int, num_slots: Optional[int] = None) -> torch.Tensor:
        """Initial slots (B, K, D): μ + exp(log σ)·noise (μ and log σ both receive gradient), or the learned ones."""
        k = self.num_slots if num_slots is None else num_slots
        if self.learned_init:
            if k != self.num_slots:
                raise ValueError(f"learned_init has {self.num_slots} slots, cannot sample {k}")
            return self.slots_init.expand(batch_size, -1, -1)  # (B, K, D)
        noise = torch.randn(batch_size, k, self.dim, device=self.slots_mu.device, dtype=self.slots_mu.dtype)
        return self.slots_mu + self.slots_log_sigma.exp() * noise  # (B, K, D)

    def step(self, k: torch.Tensor, v: torch.Tensor, slots: torch.Tensor,
             slot_mask: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """One iteration of Eq. 1, the textbook form. k, v: (B, N, D) keys and values of the normalised inputs;
        slots: (B, K, D). Returns the new slots (B, K, D) and the attention (B, K, N) before ε."""
        q = self.to_q(self.norm_slots(slots))  # (B, K, D) queries
        logits = torch.bmm(q, k.transpose(1, 2)) * self.scale  # (B, K, N) = q · k / sqrt(D)
        attn = self.softmax_over_slots(logits, slot_mask)  # (B, K, N): each token's attention sums to 1 over K
        weights = attn + self.eps  # ε keeps a slot that won nothing finite
        weights = weights / weights.sum(dim=-1, keepdim=True)  # (B, K, N): sums to 1 over the N tokens
        updates = torch.bmm(weights, v)  # (B, K, D) = Σ_n w_kn v_n, the weighted mean of the values
        return self.update(slots, updates), attn

    def step_folded(self, x: torch.Tensor, slots: torch.Tensor,
                    slot_mask: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """`step` without keys and values (the module docstring's algebra). x: (B, N, D_in) normalised inputs."""
        q = self.to_q(self.norm_slots(slots))  # (B, K, D)
        q_in = (q @ self.to_k.weight) * self.scale  # (B, K, D_in) = W_kᵀ q / sqrt(D), the queries in input space
        logits = torch.bmm(q_in, x.transpose(1, 2))  # (B, K, N) = q · k(x_n) / sqrt(D)
        attn = self.softmax_over_slots(logits, slot_mask)  # (B, K, N)
        weights = attn + self.eps
        weights = weights / weights.sum(dim=-1, keepdim=True)  # (B, K, N)
        updates = self.to_v(torch.bmm(weights, x))  # (B, K, D) = W_v Σ_n w_kn x_n = Σ_n w_kn v(x_n)
        return self.update(slots, updates), attn

    @staticmethod
    def softmax_over_slots(logits: torch.Tensor, slot_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """(B, K, N) logits → attention, softmax over the slot axis: slots compete for each token (Eq. 1).
        Inactive slots (slot_mask False) get −inf and win nothing."""
        if slot_mask is not None:
            logits = logits.masked_fill(~slot_mask[:, :, None], float("-inf"))
        return logits.softmax(dim=1)

    def update(self, slots: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        """slots ← GRU(updates, slots), then slots ← slots + MLP(LN(slots)). (B, K, D) both."""
        b, n_slots, d = slots.shape
        slots = self.gru(updates.reshape(b * n_slots, d), slots.reshape(b * n_slots, d))  # (B·K, D)
        slots = slots.reshape(b, n_slots, d)  # (B, K, D)
        return slots + self.mlp(self.norm_mlp(slots))  # residual MLP

    def forward(self, inputs: torch.Tensor, slots: Optional[torch.Tensor] = None,
                slot_mask: Optional[torch.Tensor] = None, iters: Optional[int] = None) -> SlotAttentionOutput:
        """Args:
            inputs: (B, N, D_in) input tokens.
            slots: optional initial slots (B, K, D); sampled from the learned init when omitted.
            slot_mask: optional (B, K) bool, True for active slots; inactive slots get logits −inf. Every image
                needs at least one active slot.
            iters: optional number of iterations for this call (default: the module's T), e.g. to watch the
                slots compete for longer than they were trained to.
        """
        iters = self.iters if iters is None else iters
        if iters < 1:
            raise ValueError(f"iters must be positive, got {iters}")
        _check_tensor("inputs", inputs, 3, f"(B, N, {self.input_dim})")
        if inputs.shape[-1] != self.input_dim:
            raise ValueError(f"inputs must have shape (B, N, {self.input_dim}), got {tuple(inputs.shape)}")
        b = inputs.shape[0]
        if slots is None:
            slots = self.sample_init(b)  # (B, K, D)
        else:
            _check_tensor("slots", slots, 3, f"({b}, K, {self.dim})")
            if slots.shape[0] != b or slots.shape[-1] != self.dim:
                raise ValueError(f"slots must have shape ({b}, K, {self.dim}), got {tuple(slots.shape)}")
        if slot_mask is not None:
            if slot_mask.dtype != torch.bool or tuple(slot_mask.shape) != tuple(slots.shape[:2]):
                raise ValueError(f"slot_mask must be a bool tensor of shape {tuple(slots.shape[:2])}, "
                                 f"got {slot_mask.dtype} {tuple(slot_mask.shape)}")
            if not bool(slot_mask.any(dim=1).all()):
                raise ValueError("slot_mask must leave at least one active slot per image")
        init = slots

        x = self.norm_inputs(inputs)  # (B, N, D_in), LayerNorm over the feature axis of each token
        if not self.folded:
            k, v = self.to_k(x), self.to_v(x)  # (B, N, D) keys and values, the same for every iteration
        attns = []
        for t in range(iters):
            if self.bilevel and t == iters - 1:
                slots = slots.detach() + init - init.detach()  # straight-through to the init (BO-QSA)
            if self.folded:
                slots, attn = self.step_folded(x, slots, slot_mask)
            else:
                slots, attn = self.step(k, v, slots, slot_mask)
            attns.append(attn)
        return SlotAttentionOutput(slots=slots, attn=attns[-1], init=init, attn_per_iter=torch.stack(attns))


# ---------------------------------------------------------------------------------------------------------------
# the GLASS slot module: positional grid, input MLP, slot attention, projection to the decoder's context width
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class GLASSSlotConfig:
    """The slot module of GLASS. Defaults are the authors' released config (= Stable-LSD's COCO config)."""
    input_dim: int = 768  # D_enc: DINOv2 ViT-B/14 token width
    num_slots: int = 7  # K
    iters: int = 5  # T
    dim: int = 768  # D: slot width
    mlp_hidden: int = 768  # hidden width of the residual slot MLP
    eps: float = 1e-6  # ε of the weighted mean
    out_dim: int = 1024  # width of the UNet's cross-attention context (1024 for SD 2.1)
    learned_init: bool = False  # per-slot learned init instead of the shared Gaussian
    bilevel: bool = False  # detach the last iteration's input (off in the released config)
    gaussian_init: str = "xavier"  # μ, log σ of the shared Gaussian: "xavier" (authors' code) or "small"
    grid_centres: bool = True  # positional grid at cell centres (authors' code) or at edges, linspace(0, 1, n)
    folded: bool = True  # SlotAttention's fast path (same arithmetic, another order); False: the textbook step

    def __post_init__(self):
        for name in ("input_dim", "num_slots", "iters", "dim", "mlp_hidden", "eps", "out_dim"):
            if not getattr(self, name) > 0:
                raise ValueError(f"GLASSSlotConfig.{name} must be positive, got {getattr(self, name)}")
        if self.gaussian_init not in ("xavier", "small"):
            raise ValueError(f"GLASSSlotConfig.gaussian_init must be 'xavier' or 'small', got {self.gaussian_init!r}")


class GLASSSlotOutput(NamedTuple):
    slots: torch.Tensor  # (B, K, D) slots from slot attention
    attn: torch.Tensor  # (B, K, N) last-iteration attention, softmax over slots
    cond: torch.Tensor  # (B, K, out_dim) slots projected to the diffusion decoder's context width
    init: torch.Tensor  # (B, K, D) initial slots
    attn_per_iter: torch.Tensor  # (T, B, K, N) every iteration's attention


class GLASSSlotModule(nn.Module):
    """Encoder features (B, N, D_enc) on an h×w grid → slots, masks and the decoder's conditioning tokens.

    features + Linear(grid) → LayerNorm → MLP (no residual) → SlotAttention → LayerNorm → Linear(out_dim).
    """

    def __init__(self, config: Optional[GLASSSlotConfig] = None):
        super().__init__()
        self.config = c = GLASSSlotConfig() if config is None else config  # a fresh default per instance
        self.pos_proj = nn.Linear(4, c.input_dim)  # a 1×1 projection of the (x, y, 1−x, 1−y) grid
        self.input_norm = nn.LayerNorm(c.input_dim)
        self.input_mlp = nn.Sequential(nn.Linear(c.input_dim, c.dim), nn.ReLU(inplace=True), nn.Linear(c.dim, c.dim))
        self.slot_attention = SlotAttention(num_slots=c.num_slots, dim=c.dim, input_dim=c.dim, iters=c.iters,
                                            eps=c.eps, mlp_hidden=c.mlp_hidden, learned_init=c.learned_init,
                                            bilevel=c.bilevel, gaussian_init=c.gaussian_init, folded=c.folded)
        self.out_norm = nn.LayerNorm(c.dim)
        self.out_proj = nn.Linear(c.dim, c.out_dim)

    def forward(self, features: torch.Tensor, slots: Optional[torch.Tensor] = None,
                slot_mask: Optional[torch.Tensor] = None, grid_size: Optional[tuple[int, int]] = None,
                iters: Optional[int] = None) -> GLASSSlotOutput:
        """features: (B, N, D_enc) patch tokens in row-major order; the grid is square unless `grid_size`.
        slots: (B, K, D) initial slots instead of sampled ones; slot_mask: (B, K) bool, False switches a slot off."""
        c = self.config
        _check_tensor("features", features, 3, f"(B, N, {c.input_dim})")
        if features.shape[-1] != c.input_dim:
            raise ValueError(f"features must have shape (B, N, {c.input_dim}), got {tuple(features.shape)}")
        n = features.shape[1]
        if grid_size is None:
            side = math.isqrt(n)
            if side * side != n:
                raise ValueError(f"N = {n} tokens is not a square grid; pass grid_size=(h, w)")
            grid_size = (side, side)
        h, w = grid_size
        if h * w != n:
            raise ValueError(f"grid_size {grid_size} does not match N = {n} tokens")
        grid = build_grid(h, w, device=features.device, dtype=features.dtype, centres=c.grid_centres)  # (N, 4)
        x = features + self.pos_proj(grid)[None]  # (B, N, D_enc)
        x = self.input_mlp(self.input_norm(x))  # (B, N, D)
        out = self.slot_attention(x, slots=slots, slot_mask=slot_mask, iters=iters)
        cond = self.out_proj(self.out_norm(out.slots))  # (B, K, out_dim)
        return GLASSSlotOutput(slots=out.slots, attn=out.attn, cond=cond, init=out.init,
                               attn_per_iter=out.attn_per_iter)


if __name__ == "__main__":
    module = GLASSSlotModule()
    out = module(torch.randn(2, 32 * 32, 768))
    print({name: tuple(t.shape) for name, t in out._asdict().items()})
