"""How much DINOv2's tokens at 448 px depend on the rule that resizes its 37×37 position embedding to 32×32:
torch-hub dinov2's (scale factor (32 + 0.1) / 37, what the GLASS authors evaluate with; glass.hub_pos_encoding)
against transformers' Dinov2Model (size 32). The paper preset uses the hub rule; this prints what the other would
change. No weights can be downloaded here, so the ViT-B/14 has random weights, with two position embeddings: its
own random init (no spatial structure, the worst case) and a smooth one (2-D sinusoids of random frequencies
below 4 cycles per image, scaled to the init's spread), closer to a trained embedding's low-frequency structure.

    python scripts/dinov2_interpolation.py      # about 20 s on 2 CPU threads
"""
from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from glass import hub_pos_encoding  # noqa: E402


def smooth_embedding(m: int, dim: int, std: float, gen: torch.Generator) -> torch.Tensor:
    """(1, m², dim): each channel a 2-D sinusoid of random frequency (< 4 cycles over the grid) and phase."""
    y, x = torch.meshgrid(torch.linspace(0, 1, m), torch.linspace(0, 1, m), indexing="ij")
    f = torch.rand(dim, 2, generator=gen) * 4
    phase = torch.rand(dim, generator=gen) * 2 * math.pi
    waves = torch.sin(2 * math.pi * (f[:, 0, None, None] * x + f[:, 1, None, None] * y) + phase[:, None, None])
    return (waves * std * math.sqrt(2)).flatten(1).T[None]  # (1, m², dim)


def main() -> None:
    from transformers import Dinov2Config, Dinov2Model
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    model = Dinov2Model(Dinov2Config(image_size=518, patch_size=14)).eval()  # ViT-B/14: 768 wide, 12 layers
    image = torch.rand(1, 3, 448, 448, generator=gen)
    std = float(model.embeddings.position_embeddings.detach()[0, 1:].std())
    rows = []
    for name in ("random init", "smooth"):
        if name == "smooth":
            model.embeddings.position_embeddings.data[:, 1:] = smooth_embedding(37, 768, std, gen)
        emb = model.embeddings
        hf_forward = emb.interpolate_pos_encoding
        with torch.no_grad():
            tokens = torch.zeros(1, 1 + 32 * 32, 768)
            pos_hf, pos_hub = hf_forward(tokens, 448, 448), hub_pos_encoding(emb, tokens, 448, 448)
            out_hf = model(pixel_values=image).last_hidden_state[:, 1:]
            emb.interpolate_pos_encoding = types.MethodType(hub_pos_encoding, emb)
            out_hub = model(pixel_values=image).last_hidden_state[:, 1:]
            emb.interpolate_pos_encoding = hf_forward
        rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
        cos = float(torch.nn.functional.cosine_similarity(out_hub, out_hf, dim=-1).mean())
        rows.append((name, rel(pos_hub[:, 1:], pos_hf[:, 1:]), rel(out_hub, out_hf), cos))
    print("| position embedding | its relative change (‖hub − hf‖ / ‖hf‖) | patch tokens' relative change | "
          "mean token cosine |\n|---|---|---|---|")
    for name, p, t, c in rows:
        print(f"| {name} | {p:.3f} | {t:.4f} | {c:.5f} |")


if __name__ == "__main__":
    main()
