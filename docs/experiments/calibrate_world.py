"""Issue 35, part A: calibrate a candidate toy world (docs/experiments/world_v3.py) on the binding harness before
any stand-in is retrained. docs/lab_notes/binding.md §12 holds the table this writes.

For one candidate it
1. pretrains a label-trained encoder as the shipped one (toy/pretrain.py's "part" objective: within-image
   supervised contrast over (instance, part) ids + a per-token class head; the toy encoder's sizes) on the
   candidate's train scenes;
2. caches the encoder's tokens of 2,048 train and 256 val scenes;
3. trains the toy preset's slot module and MLP decoder (K slots, T = 3, learned init + bi-level detach, decoder
   position std 1, AdamW lr 4e-4 for the slots and 4e-3 for the decoder, 100 warm-up steps, batch 16, clip 1.0,
   900 steps) with NO diffusion decoder, on ground-truth guidance:
       inst     instance term only: DINOSAUR-like
       sem      GT semantic masks, semantic term only
       both     GT semantic masks, semantic + instance terms (λs 0.7, λi 0.9)
       oracle   GT instance masks, semantic + instance terms
4. scores every row on the 256 val scenes with mIoU_i, mBO_i, FG-ARI (multi-object scenes), SO / PO / GO
   (metrics.so_po_go's rule) and GO on scenes that repeat a class, beside the floors: pixel and token k-means,
   GT semantic masks and GT parts scored as slots. DINOSAUR-like rows are also scored with the MLP decoder's alpha
   masks (what DINOSAUR's paper reports; its code evaluates the decoder's masks).

Candidates (world_v3.CANDIDATES): v2 (today's world and shipped encoder: the harness against the project's own
numbers), parts (three or four large parts, one look per object), indep (parts that vary on their own),
indep_few (+ fewer, larger objects), parts_flat and indep_few_flat (+ a flat background).

Every run writes runs/calib/<candidate>/<row>_k<K>_s<seed>[_t<steps>].json and is skipped when that file exists, so
the command resumes. Commands (2 threads; the encoder about 6 min, each 900-step row about 4 min):
    python docs/experiments/calibrate_world.py --candidate indep --rows floors inst --seeds 0 1
    python docs/experiments/calibrate_world.py --candidate parts --rows sem both oracle --seeds 0 1
    python docs/experiments/calibrate_world.py --candidate v2 --rows inst --seeds 0 --k 5
    python docs/experiments/calibrate_world.py --table v2 parts indep indep_few_flat parts_flat
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import metrics  # noqa: E402
import world_v3  # noqa: E402
from evaluate import kmeans_labels, pixel_tokens  # noqa: E402
from glass import MLPDecoder, slot_labels, upsample_masks  # noqa: E402
from matching import segments_from_semantic, semantic_loss_batched  # noqa: E402
from slot_attention import GLASSSlotConfig, GLASSSlotModule  # noqa: E402
from toy.models import ModelSizes, build_encoder, patch_features  # noqa: E402
from toy.tokens import instance_contrast, patch_labels, patch_majority  # noqa: E402

OUT = ROOT / "runs" / "calib"
N_TRAIN, N_VAL, N_POOL = 2048, 256, 8192


def parts_ids(group: torch.Tensor, part: torch.Tensor, p: int, groups: int) -> torch.Tensor:
    """Majority (group, part) id of each p×p patch with up to MAX_PARTS parts: MAX_PARTS·(group − 1) + part, 0 =
    background → (B, N)."""
    m = world_v3.MAX_PARTS
    return patch_majority(torch.where(group > 0, m * (group - 1) + part, 0), p, m * groups + 1)


def train_encoder(cand, folder: Path, steps: int):
    """The shipped encoder's objective and sizes on the candidate's scenes; saved to folder (safetensors)."""
    from transformers import Dinov2Model
    if cand.world == "v2":  # today's world: the shipped encoder
        return Dinov2Model.from_pretrained(ROOT / "toy_models" / "encoder", dtype=torch.float32).eval()
    if (folder / "config.json").exists():
        return Dinov2Model.from_pretrained(folder, dtype=torch.float32).eval()
    torch.manual_seed(0)
    pool = world_v3.scenes("train", N_POOL, cand, offset=100_000)  # disjoint from the harness's train scenes
    enc = build_encoder(ModelSizes())
    head = torch.nn.Linear(enc.config.hidden_size, len(world_v3.CLASSES) + 1)
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)
    p, t0 = enc.config.patch_size, time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = 5e-4 * min(1.0, (step + 1) / 200)
        idx = torch.randint(0, N_POOL, (32,), generator=gen)
        x, inst, sem, part = (pool[k][idx] for k in ("image", "instance", "semantic", "part"))
        if torch.rand((), generator=gen) < 0.5:
            x, inst, sem, part = x.flip(-1), inst.flip(-1), sem.flip(-1), part.flip(-1)
        tokens = patch_features(enc, x)  # (B, N, D)
        loss = instance_contrast(tokens, parts_ids(inst, part, p, 4)) \
            + F.cross_entropy(head(tokens).flatten(0, 1), patch_labels(sem, p).flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"encoder step {step + 1} loss {loss.item():.4f} ({time.time() - t0:.0f}s)", flush=True)
    enc.save_pretrained(folder)
    return enc.eval()


@torch.no_grad()
def tokens_of(enc, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([patch_features(enc, images[s:s + 128]) for s in range(0, len(images), 128)])  # (B, N, D)


def score(pred: torch.Tensor, val: dict) -> dict:
    """Discovery metrics of label maps (B, 64, 64), means over val scenes; repeated GO over scenes repeating a class."""
    vals = metrics.score_masks(pred, val["instance"], val["semantic"])
    out = {k: metrics.summarize(v).mean for k, v in vals.items()}
    out["repeat_go"] = float(vals["go"][val["repeated"]].mean())
    return out


@torch.no_grad()
def score_model(sm, dec, feats: torch.Tensor, val: dict) -> dict:
    sm.eval()
    out = sm(feats)
    sm.train()
    n, k = out.attn.shape[:2]
    r = score(slot_labels(out.attn.reshape(n, k, 16, 16), 64), val)
    _, alpha = dec(out.slots)  # (B, K, N) the decoder's masks
    r["alpha"] = score(slot_labels(alpha.reshape(n, k, 16, 16), 64), val)
    return r


def train_row(row: str, feats, train: dict, vfeats, val: dict, k: int, seed: int, steps: int,
              slot_init: str = "learned") -> dict:
    torch.manual_seed(seed)
    learned = slot_init == "learned"  # the toy preset: a learned vector per slot + the bi-level detach
    sm = GLASSSlotModule(GLASSSlotConfig(input_dim=feats.shape[-1], num_slots=k, iters=3, dim=128, mlp_hidden=256,
                                         out_dim=64, learned_init=learned, bilevel=learned))
    dec = MLPDecoder(128, feats.shape[-1], feats.shape[1], 256, 3, pos_std=1.0, factorised=True)
    opt = torch.optim.AdamW([{"params": list(sm.parameters()), "base": 4e-4},
                             {"params": list(dec.parameters()), "base": 4e-3}], lr=4e-4, weight_decay=0.01)
    params = list(sm.parameters()) + list(dec.parameters())
    masks = train["instance"] if row == "oracle" else train["semantic"]
    use_sem, use_inst = row in ("sem", "both", "oracle"), row in ("inst", "both", "oracle")
    gen = torch.Generator().manual_seed(seed)
    t0, curve = time.time(), []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = g["base"] * min(1.0, (step + 1) / 100)
        idx = torch.randint(0, len(feats), (16,), generator=gen)
        f = feats[idx]
        out = sm(f)
        loss = torch.zeros(())
        if use_sem:
            soft = upsample_masks(out.attn.reshape(len(idx), k, 16, 16), 64)  # (B, K, 64, 64)
            seg = segments_from_semantic(masks[idx], 6 if row != "oracle" else 4, True)
            loss = loss + 0.7 * semantic_loss_batched(soft, seg.masks, seg.present, seg.valid).loss
        if use_inst:
            loss = loss + 0.9 * F.mse_loss(dec(out.slots)[0], f)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 300 == 0:
            r = score_model(sm, dec, vfeats, val)
            curve.append({"step": step + 1, **{key: r[key] for key in ("miou_i", "so", "po", "go", "bg")}})
            print(f"{row} k{k} s{seed} step {step + 1} ({time.time() - t0:.0f}s) loss {loss.item():.4f} | "
                  + " ".join(f"{key} {r[key]:.3f}" for key in ("miou_i", "mbo_i", "fg_ari_multi", "so", "po", "go",
                                                               "repeat_go")), flush=True)
    r["curve"], r["seconds"] = curve, round(time.time() - t0)
    return r


def floors(cand, enc, val: dict, k: int) -> dict:
    p = world_v3.MAX_PARTS
    out = {"pixel_kmeans": score(kmeans_labels(pixel_tokens(val["image"]), k, 64), val),
           "token_kmeans": score(kmeans_labels(tokens_of(enc, val["image"]), k, 64), val),
           "gt_semantic": score(val["semantic"], val),
           "gt_parts": score(torch.where(val["instance"] > 0, p * (val["instance"] - 1) + val["part"], 0), val)}
    return out


def world_stats(cand) -> dict:
    """The share of multi-object scenes that repeat a class, and part independence: the variance of a part's mean
    colour given its class and its sibling part's mean colour (a least-squares fit per class), against given its
    class alone. Near 1: the sibling says nothing of the part's look."""
    v = world_v3.scenes("val", 512, cand)
    multi = v["num_objects"] >= 2
    xs, ys, cls = [], [], []
    for i in range(len(v["image"])):
        img = v["image"][i].permute(1, 2, 0)  # (H, W, 3)
        for o in v["instance"][i].unique().tolist():
            if o == 0:
                continue
            m = v["instance"][i] == o
            a, b = m & (v["part"][i] == 1), m & (v["part"][i] == 2)
            if a.sum() < 4 or b.sum() < 4:
                continue
            xs.append(img[b].mean(0))
            ys.append(img[a].mean(0))
            cls.append(int(v["semantic"][i][m][0]))
    x, y, c = torch.stack(xs).double(), torch.stack(ys).double(), torch.tensor(cls)
    given_class = given_both = 0.0
    for cl in c.unique():
        sel = c == cl
        yc, xc = y[sel] - y[sel].mean(0), x[sel] - x[sel].mean(0)
        given_class += float(yc.pow(2).sum())
        beta = torch.linalg.lstsq(xc, yc).solution  # (3, 3)
        given_both += float((yc - xc @ beta).pow(2).sum())
    return {"repeat_share_multi": float((v["repeated"] & multi).sum() / multi.sum()),
            "part_independence": given_both / given_class}


def run(args) -> None:
    cand = world_v3.CANDIDATES[args.candidate]
    folder = args.out / cand.name
    folder.mkdir(parents=True, exist_ok=True)
    enc = train_encoder(cand, folder / "encoder", args.encoder_steps)
    train, val = world_v3.scenes("train", N_TRAIN, cand), world_v3.scenes("val", N_VAL, cand)
    feats, vfeats = tokens_of(enc, train["image"]), tokens_of(enc, val["image"])
    for row in args.rows:
        for seed in ([0] if row == "floors" else args.seeds):
            budget = "" if args.steps == 900 or row == "floors" else f"_t{args.steps}"
            budget += "" if args.slot_init == "learned" or row == "floors" else f"_{args.slot_init}"
            path = folder / f"{row}_k{args.k}_s{seed}{budget}.json"
            if path.exists():
                continue
            if row == "floors":
                r = {**floors(cand, enc, val, args.k), "world": world_stats(cand)}
            else:
                r = train_row(row, feats, train, vfeats, val, args.k, seed, args.steps, args.slot_init)
            path.write_text(json.dumps(r, indent=1))
            print(f"wrote {path}", flush=True)


COLS = ("miou_i", "mbo_i", "fg_ari_multi", "so", "po", "go", "repeat_go")


def table(names: list, k: int, out: Path = OUT) -> str:
    lines = ["| candidate | row | seed | " + " | ".join(COLS) + " |", "|" + "---|" * (len(COLS) + 3)]
    for name in names:
        folder = out / name
        fl = folder / f"floors_k{k}_s0.json"
        if fl.exists():
            f = json.loads(fl.read_text())
            for key in ("pixel_kmeans", "token_kmeans", "gt_semantic", "gt_parts"):
                lines.append(f"| {name} | {key} | — | " + " | ".join(f"{f[key][c]:.3f}" for c in COLS) + " |")
            lines.append(f"| {name} | world | — | repeat share {f['world']['repeat_share_multi']:.2f}, part "
                         f"independence {f['world']['part_independence']:.2f} |" + " |" * (len(COLS) - 1))
        for row in ("inst", "sem", "both", "oracle"):
            for path in sorted(folder.glob(f"{row}_k{k}_s*.json")):
                r = json.loads(path.read_text())
                seed = path.stem.rsplit("_s", 1)[1].replace("_t", ", steps ").replace("_gaussian", ", Gaussian init")
                lines.append(f"| {name} | {row} | {seed} | " + " | ".join(f"{r[c]:.3f}" for c in COLS) + " |")
                if row == "inst":
                    a = r["alpha"]
                    lines.append(f"| {name} | inst, decoder alpha | {seed} | "
                                 + " | ".join(f"{a[c]:.3f}" for c in COLS) + " |")
    return "\n".join(lines)


def summary(names: list, k: int, out: Path = OUT, steps: int = 900) -> str:
    """One line per candidate and seed: the pass criterion's numbers (docs/lab_notes/binding.md §12)."""
    budget = "" if steps == 900 else f"_t{steps}"

    def load(name, row, seed, suffix=budget):
        path = out / name / f"{row}_k{k}_s{seed}{suffix}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def cell(r, po=True, rep=False):
        if r is None:
            return "—"
        extra = [f"PO {r['po']:.2f}"] if po else []
        extra += [f"rep. GO {r['repeat_go']:.2f}"] if rep else []
        return f"{r['miou_i']:.3f} ({', '.join(extra)})" if extra else f"{r['miou_i']:.3f}"
    lines = ["| candidate, seed | pixel / token k-means (token PO) | DINOSAUR-like (PO; bg share) | its decoder masks | "
             "GT semantic: semantic only | GT semantic: semantic + instance (PO; repeated GO) | semantic only: "
             "repeated GO | passes |", "|---|---|---|---|---|---|---|---|"]
    for name in names:
        fl = load(name, "floors", 0, "")
        for seed in (0, 1):
            inst, sem, both = load(name, "inst", seed), load(name, "sem", seed), load(name, "both", seed)
            if inst is None:
                continue
            floors = f"{fl['pixel_kmeans']['miou_i']:.3f} / {fl['token_kmeans']['miou_i']:.3f} " \
                     f"({fl['token_kmeans']['po']:.2f})" if fl and seed == 0 else ""
            dino = f"{inst['miou_i']:.3f} ({inst['po']:.2f}; {inst['bg']:.2f})"
            checks = [inst["po"] >= 0.40]
            if sem and both:
                checks += [both["miou_i"] - inst["miou_i"] >= 0.05, both["miou_i"] - sem["miou_i"] >= 0.02,
                           sem["repeat_go"] - both["repeat_go"] >= 0.05]
            verdict = ("✓" if all(checks) else "✗") + ("" if sem and both else " (screen)")
            sem_go = "—" if sem is None else f"{sem['repeat_go']:.2f}"
            lines.append(f"| {name}, {seed} | {floors} | {dino} | {inst['alpha']['miou_i']:.3f} | "
                         f"{cell(sem, po=False)} | {cell(both, rep=True)} | {sem_go} | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", choices=sorted(world_v3.CANDIDATES))
    ap.add_argument("--rows", nargs="+", default=["inst"], choices=["floors", "inst", "sem", "both", "oracle"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--k", type=int, default=7, help="slots (the paper's 7)")
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--encoder-steps", type=int, default=800)
    ap.add_argument("--slot-init", choices=["learned", "gaussian"], default="learned",
                    help="learned: one vector per slot + bi-level detach (toy preset); gaussian: the paper preset's")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--table", nargs="+", help="print the markdown table of these candidates and stop")
    ap.add_argument("--summary", nargs="+", help="print the pass criterion's summary of these candidates and stop")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.table:
        print(table(args.table, args.k, args.out))
        return
    if args.summary:
        print(summary(args.summary, args.k, args.out, args.steps))
        return
    run(args)


if __name__ == "__main__":
    main()
