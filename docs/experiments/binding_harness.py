"""The fast harness behind docs/lab_notes/binding.md: the GLASS slot module and MLP decoder trained on cached encoder tokens,
with the semantic (matched BCE) and/or instance (feature MSE) loss and NO diffusion decoder (L_recon off), so one
run of 900 steps takes 1.5–4 minutes on 2 CPU cores instead of 8. It reuses the project's modules (slot_attention,
matching, glass.MLPDecoder, metrics); only the loop is its own. Not a product path: train.py is.

    python docs/experiments/binding_harness.py --data pseudo --losses both --slot-init learned --bilevel
    python docs/experiments/binding_harness.py --data gt-instance --losses sem --slot-init gaussian

Data: `pseudo` = the quick start's dataset (data/toy_pseudo: generated images + pseudo semantic masks);
`gt-semantic` / `gt-instance` = 2,048 real toy train scenes with their ground-truth semantic / instance masks
(the ladder's oracle rungs). Scored on 256 val scenes every 300 steps (same metrics as evaluate.py).
"""
import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from infra.data import PseudoGTDataset  # noqa: E402
import evaluate  # noqa: E402
import metrics  # noqa: E402

from toy.world import ToyScenes  # noqa: E402
import glass  # noqa: E402
from glass import FrozenEncoder, MLPDecoder, slot_labels, upsample_masks  # noqa: E402
from matching import segments_from_semantic, semantic_loss_batched  # noqa: E402
from slot_attention import GLASSSlotConfig, GLASSSlotModule  # noqa: E402


def scenes(split: str, n: int) -> dict:
    ds = ToyScenes(split, length=n)
    items = [ds[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "instance", "semantic")}


def pseudo_data(folder: Path) -> dict:
    ds = PseudoGTDataset(folder)
    items = [ds[i] for i in range(len(ds))]
    return {"image": torch.stack([it["image"] for it in items]), "mask": torch.stack([it["mask"] for it in items]),
            "has": torch.stack([it["has_classes"] for it in items])}


@torch.no_grad()
def encode(images: torch.Tensor, encoder: str) -> torch.Tensor:
    if encoder == "pixels":
        return evaluate.pixel_tokens(images)
    enc = FrozenEncoder(glass.preset("toy", encoder=encoder))
    return torch.cat([enc(images[s:s + 128]) for s in range(0, len(images), 128)])  # (B, N, D_enc)


@torch.no_grad()
def score(sm, feats: torch.Tensor, val: dict) -> dict:
    sm.eval()
    attn = sm(feats).attn  # (B, K, N)
    sm.train()
    n, k = attn.shape[:2]
    pred = slot_labels(attn.reshape(n, k, 16, 16), 64)
    vals = metrics.score_masks(pred, val["instance"], val["semantic"])
    return {key: metrics.summarize(v).mean for key, v in vals.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default=str(ROOT / "toy_models" / "encoder"), help="Dinov2Model folder or 'pixels'")
    ap.add_argument("--data", choices=["pseudo", "gt-semantic", "gt-instance"], default="pseudo")
    ap.add_argument("--pseudo-dir", type=Path, default=ROOT / "data" / "toy_pseudo")
    ap.add_argument("--losses", choices=["sem", "inst", "both"], default="both")
    ap.add_argument("--slot-init", choices=["gaussian", "learned"], default="learned")
    ap.add_argument("--bilevel", action="store_true")
    ap.add_argument("--lambda-semantic", type=float, default=0.7)
    ap.add_argument("--lambda-instance", type=float, default=0.9)
    ap.add_argument("--semantic-from", type=int, default=0, help="step at which the semantic loss switches on")
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# {vars(args)}", flush=True)
    if args.data == "pseudo":
        d = pseudo_data(args.pseudo_dir)
        images, masks, has = d["image"], d["mask"], d["has"]
    else:
        d = scenes("train", 2048)
        images, masks, has = d["image"], d["semantic" if args.data == "gt-semantic" else "instance"], None
    val = scenes("val", 256)
    feats, vfeats = encode(images, args.encoder), encode(val["image"], args.encoder)

    torch.manual_seed(args.seed)
    k = 5
    sm = GLASSSlotModule(GLASSSlotConfig(input_dim=feats.shape[-1], num_slots=k, iters=3, dim=128, mlp_hidden=256,
                                         out_dim=64, learned_init=args.slot_init == "learned", bilevel=args.bilevel))
    dec = MLPDecoder(128, feats.shape[-1], feats.shape[1], 256, 3)
    params = list(sm.parameters()) + list(dec.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step + 1) / 100)
        idx = torch.randint(0, len(feats), (args.batch_size,), generator=gen)
        f = feats[idx]
        out = sm(f)
        sem = inst = torch.zeros(())
        if args.losses in ("sem", "both") and step >= args.semantic_from:
            soft = upsample_masks(out.attn.reshape(len(idx), k, 16, 16), 64)  # (B, K, 64, 64)
            seg = segments_from_semantic(masks[idx], 4, True)
            present = seg.present if has is None else seg.present & has[idx].bool()[:, None]
            sem = semantic_loss_batched(soft, seg.masks, present, seg.valid).loss
        if args.losses in ("inst", "both"):
            inst = F.mse_loss(dec(out.slots)[0], f)
        loss = args.lambda_semantic * sem + args.lambda_instance * inst
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 300 == 0 or step + 1 == args.steps:
            r = score(sm, vfeats, val)
            print(f"step {step + 1} ({time.time() - t0:.0f}s) | semantic {float(sem):.3f} instance {float(inst):.3f} | "
                  + " ".join(f"{key} {r[key]:.3f}" for key in ("miou_i", "mbo_i", "mbo_c", "fg_ari", "fg_ari_multi",
                                                               "so", "go")), flush=True)


if __name__ == "__main__":
    main()
