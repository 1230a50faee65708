"""The token level of the toy encoder: what its pretraining (toy/pretrain.py) trains towards and how its tokens are
measured (toy/report.py, evaluate.py).

    patchify, block_mask, MAEDecoder   the masked-patch objective ("mae", Tab. 6b's other encoder)
    patch_majority, part_ids, patch_labels   the label of each patch: majority instance, (instance, part), class
    instance_contrast                  the shipped encoder's within-image supervised contrast (SupCon)
    group_spread, token_variance       how tokens spread around their image's, instance's and part's mean token
    linear_probe                       how well a linear map reads each patch's class off its token

Shape legend: B images, N = (H/p)·(W/p) patch tokens in row-major order, D token width, p patch size.
Checked by tests/test_toy_pretrain.py (patch order, majorities, the contrast against a hand-computed case).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from toy.models import patch_features
from toy.world import CLASSES, MAX_OBJECTS, MAX_PARTS, ToyScenes


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, 3, H, W) → (B, N, 3·p·p) patches in row-major order, the order of ViT tokens."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p)  # (B, 3, h, p, w, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p), c * p * p)  # (B, N, 3·p·p)


def block_mask(b: int, side: int, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """Block-wise masking (BEiT/iBOT style): random rectangles of 2–6 patches until ≥ ratio of the side×side grid
    is hidden. Returns (B, side²) bool. Large holes make the model reason about whole shapes, not neighbours."""
    masks = torch.zeros(b, side, side, dtype=torch.bool)
    for i in range(b):
        while masks[i].float().mean() < ratio:
            h, w = torch.randint(2, 7, (2,), generator=gen).tolist()
            y, x = torch.randint(0, side - h + 1, (1,), generator=gen).item(), \
                torch.randint(0, side - w + 1, (1,), generator=gen).item()
            masks[i, y:y + h, x:x + w] = True
    return masks.flatten(1)


class MAEDecoder(nn.Module):
    """A light transformer that inpaints hidden patches from the encoder's *visible* tokens only: the encoder's
    outputs at hidden positions are replaced by one learned embedding, so everything the decoder knows about a hole
    must have been packed into the visible tokens by the encoder (the MAE idea)."""

    def __init__(self, dim: int, num_tokens: int, out_dim: int, layers: int = 2, heads: int = 4):
        super().__init__()
        self.mask_embed = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, num_tokens, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)  # pre-norm: no nested path
        self.head = nn.Linear(dim, out_dim)

    def forward(self, tokens: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        x = torch.where(masked[..., None], self.mask_embed.expand_as(tokens), tokens) + self.pos  # (B, N, D)
        return self.head(self.blocks(x))  # (B, N, 3p²)


def patch_majority(labels: torch.Tensor, p: int, num_ids: int) -> torch.Tensor:
    """Majority id of each p×p patch of an integer map (B, H, W) with ids 0..num_ids−1 → (B, N)."""
    onehot = F.one_hot(labels, num_ids).permute(0, 3, 1, 2).float()  # (B, I, H, W)
    return F.avg_pool2d(onehot, p).argmax(dim=1).flatten(1)  # (B, N)


def part_ids(group: torch.Tensor, part: torch.Tensor, p: int, groups: int) -> torch.Tensor:
    """Majority (group, part) id of each p×p patch: MAX_PARTS·(group − 1) + part ∈ 1..MAX_PARTS·groups, 0 = background. group is an
    instance map (B, H, W) for (instance, part) ids or a semantic map for (class, part) ids → (B, N)."""
    return patch_majority(torch.where(group > 0, MAX_PARTS * (group - 1) + part, 0), p, MAX_PARTS * groups + 1)


def group_spread(x: torch.Tensor, ids: torch.Tensor) -> float:
    """Σ ||x − mean of its group||² over all tokens: x (B, N, D), ids (B, N) group of each token within its image.
    Divided by B·N·D, it is the MSE of predicting every token by its group's mean token."""
    onehot = F.one_hot(ids, int(ids.max()) + 1).to(x.dtype)  # (B, N, G)
    means = torch.einsum("bng,bnd->bgd", onehot, x) / onehot.sum(1).clamp(min=1)[..., None]  # (B, G, D)
    return float((x - torch.einsum("bng,bgd->bnd", onehot, means)).pow(2).sum())


@torch.no_grad()
def token_variance(enc, n: int = 256) -> dict:
    """How encoder tokens spread, summed over the D dimensions and averaged over val tokens: around their image's
    mean token, around their instance's mean (background one group), around their (instance, part) mean, and
    around their image's (class, part) mean. Small within-part and within-instance spread against a large
    within-image spread: tokens group by part and object, which is what k-means and the instance term can use. A
    (class, part) spread well above the part spread: two instances of one class differ in their tokens."""
    p = enc.config.patch_size
    ds = ToyScenes("val", length=n)
    sums = {"image": 0.0, "instance": 0.0, "part": 0.0, "class_part": 0.0}
    count = 0
    for s in range(0, n, 64):
        items = [ds[i] for i in range(s, min(n, s + 64))]
        x = patch_features(enc, torch.stack([it["image"] for it in items]))  # (B, N, D)
        inst = torch.stack([it["instance"] for it in items])
        part = torch.stack([it["part"] for it in items])
        sem = torch.stack([it["semantic"] for it in items])
        groups = {"image": torch.zeros(x.shape[:2], dtype=torch.long),
                  "instance": patch_majority(inst, p, MAX_OBJECTS + 1),
                  "part": part_ids(inst, part, p, MAX_OBJECTS),
                  "class_part": part_ids(sem, part, p, len(CLASSES))}
        for key, ids in groups.items():  # (B, N) group of each token
            sums[key] += group_spread(x, ids)
        count += x.shape[0] * x.shape[1]
    return {k: v / count for k, v in sums.items()}


def instance_contrast(tokens: torch.Tensor, ids: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Supervised contrast of the tokens of one image (SupCon, Khosla et al. 2020, within each image): a token's
    positives are the other tokens of its own instance (background is one group), its negatives every token of
    another instance or of the background in the same image. tokens (B, N, D), ids (B, N) → scalar loss."""
    z = F.normalize(tokens, dim=-1)
    logits = torch.einsum("bnd,bmd->bnm", z, z) / tau  # (B, N, N) cosine similarities / τ
    n = z.shape[1]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)[None]  # (1, N, N)
    logits = logits.masked_fill(self_mask, float("-inf"))  # a token is not its own candidate
    log_prob = logits.log_softmax(dim=-1)  # (B, N, N): over all other tokens of the image
    pos = (ids[:, :, None] == ids[:, None, :]) & ~self_mask  # (B, N, N) same instance
    n_pos = pos.sum(-1)  # (B, N)
    per_token = -(log_prob.masked_fill(~pos, 0.0)).sum(-1) / n_pos.clamp(min=1)  # mean over positives
    return per_token[n_pos > 0].mean()


def patch_labels(semantic: torch.Tensor, p: int) -> torch.Tensor:
    """Majority class (0 = background) of each p×p patch: (B, H, W) → (B, N)."""
    return patch_majority(semantic, p, len(CLASSES) + 1)


def linear_probe(enc, n_train: int = 512, n_val: int = 512, steps: int = 300, foreground: bool = False) -> float:
    """Per-patch semantic class accuracy of a linear probe on frozen patch tokens: over all val tokens (background
    a class of its own), or with `foreground` over the tokens whose patch is mostly object."""
    p = enc.config.patch_size
    tr = ToyScenes("train", length=n_train, offset=8_000_000)
    va = ToyScenes("val", length=n_val)

    @torch.no_grad()
    def feats(ds):
        xs, ys = [], []
        for s in range(0, len(ds), 64):
            items = [ds[i] for i in range(s, min(len(ds), s + 64))]
            xs.append(patch_features(enc, torch.stack([it["image"] for it in items])).flatten(0, 1))
            ys.append(patch_labels(torch.stack([it["semantic"] for it in items]), p).flatten())
        return torch.cat(xs), torch.cat(ys)

    xtr, ytr = feats(tr)
    xva, yva = feats(va)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xva = (xtr - mu) / sd, (xva - mu) / sd
    torch.manual_seed(0)
    probe = nn.Linear(xtr.shape[1], len(CLASSES) + 1)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(probe(xtr), ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        right = probe(xva).argmax(1) == yva
        return float(right[yva > 0].float().mean() if foreground else right.float().mean())
