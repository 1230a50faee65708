"""The data side of training: the pseudo-GT dataset reader and a deterministic, resumable, sharded stream of batches.

    ds = PseudoGTDataset("data/toy_pseudo")             # validated once (manifest.json); bad items left out and named
    loader = make_loader(ds, args, start_step, num_steps, rank, world)
    cache = FrozenCache(model.frozen_outputs)            # frozen encoder tokens + VAE moments, once per item

A folder written by `pseudo_gt.write_dataset` (meta.json, items-rank*.jsonl, images/, masks/) is read here; step s
of a run always sees the same batch, so a resumed run continues exactly (tests/test_train.py). This file imports
only torch, numpy and Pillow, so it can be copied into another project on its own.
"""
from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch



class StepSampler(torch.utils.data.Sampler):
    """Yields the dataset indices of global steps start, start+1, …: each epoch is a permutation seeded by
    (seed, epoch); step s takes the global batch s of that stream (batch_size × world × accumulate items), and this
    rank takes its `accumulate` micro-batches of it: micro-batch a of rank r is the slice (a·world + r). So a
    resumed run (start = saved step) and a fresh run see the same batches at the same steps, and the global batch of
    a step is the same items whatever the number of ranks (with accumulate = global batch / (batch_size × world))."""

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int, rank: int = 0, world: int = 1,
                 num_steps: int = 10 ** 9, accumulate: int = 1):
        self.n, self.b, self.seed, self.start, self.rank, self.world = n, batch_size, seed, start_step, rank, world
        self.num_steps, self.accumulate = num_steps, accumulate
        if n < batch_size * world * accumulate:
            raise ValueError(f"dataset of {n} items is smaller than one global batch "
                             f"({batch_size}×{world}×{accumulate})")

    def global_batch_of_step(self, step: int) -> torch.Tensor:
        global_b = self.b * self.world * self.accumulate
        per_epoch = self.n // global_b
        epoch, k = divmod(step, per_epoch)
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
        return perm[k * global_b:(k + 1) * global_b]

    def indices_of_step(self, step: int) -> list:
        """This rank's items of global step `step`, its micro-batches one after the other."""
        batch = self.global_batch_of_step(step)
        mine = [batch[(a * self.world + self.rank) * self.b:(a * self.world + self.rank + 1) * self.b]
                for a in range(self.accumulate)]
        return torch.cat(mine).tolist()

    def __iter__(self):
        for s in range(self.start, self.start + self.num_steps):
            yield from self.indices_of_step(s)

    def __len__(self):
        return self.num_steps * self.b * self.accumulate


def prefetch_batches(batch_bytes: int, workers: int, limit: int = 4, shm: str = "/dev/shm") -> int:
    """Batches each loader worker keeps ready: at most `limit`, and no more than fit in half of the free shared
    memory that worker processes hand batches through (a container's default 64 MB /dev/shm dies with a bus error
    under 8 workers × 4 batches of 768-px images)."""
    import shutil
    try:
        free = shutil.disk_usage(shm).free
    except OSError:  # no /dev/shm (not Linux): keep the limit
        return limit
    return max(1, min(limit, free // 2 // max(1, workers * batch_bytes)))


def make_loader(dataset, args, start_step: int, num_steps: int, rank: int, world: int, accumulate: int = 1,
                pin_memory: bool = False):
    """Batches of `args.batch_size` items (micro-batches when accumulate > 1) in StepSampler's order. Items stay
    uint8 when the dataset gives them so (`PseudoGTDataset(raw=True)`); the loop converts them on the device."""
    sampler = StepSampler(len(dataset), args.batch_size, args.seed, start_step, rank, world, num_steps, accumulate)
    prefetch = None
    if args.workers > 0:
        first = dataset[0]
        item_bytes = sum(v.numel() * v.element_size() for v in first.values() if torch.is_tensor(v))
        prefetch = prefetch_batches(item_bytes * args.batch_size, args.workers)
    return torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, sampler=sampler,
                                       num_workers=args.workers, drop_last=True, pin_memory=pin_memory,
                                       generator=torch.Generator().manual_seed(args.seed),  # not the global RNG
                                       persistent_workers=False, prefetch_factor=prefetch)


def batch_to_device(batch: dict, device, non_blocking: bool = False) -> dict:
    """A loader's batch on the device, in the dtypes the model takes: a uint8 image (B, 3, H, W) becomes float in
    [0, 1] and uint8 masks long, after the copy (4× and 8× fewer bytes through the host-to-device link)."""
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(device, non_blocking=non_blocking)
            if k == "image" and v.dtype == torch.uint8:
                v = v.float() / 255.0
            elif k in ("mask", "instance") and v.dtype != torch.long:
                v = v.long()
        out[k] = v
    return out


class Manifest:
    """What validating a dataset's files found, kept in FOLDER/manifest.json so that it is done once, not on every
    open, rank and phase (236k PNGs of 768 px at COCO scale). Per file: byte size, modification time, SHA-1 of the
    bytes, and the decoded (width, height) or the decoding error. An entry is trusted while the file's size and
    modification time are unchanged; a rewritten or new file is decoded again."""

    def __init__(self, folder: Path):
        self.path = folder / "manifest.json"
        self.folder, self.changed, self.decoded = folder, False, 0
        try:
            self.entries = json.loads(self.path.read_text()) if self.path.exists() else {}
        except ValueError:  # a manifest torn by a crash: validate again
            self.entries = {}

    def check(self, name: str, size) -> str | None:
        """Why file `name` cannot be used (missing, undecodable, not size×size), or None if it can."""
        import hashlib
        from PIL import Image
        path = self.folder / name
        try:
            st = path.stat()
        except OSError as e:
            return f"{name}: {e.strerror or e}"
        entry = self.entries.get(name)
        if entry is None or entry["bytes"] != st.st_size or entry["mtime_ns"] != st.st_mtime_ns:
            data = path.read_bytes()
            self.decoded += 1
            entry = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha1": hashlib.sha1(data).hexdigest()}
            try:
                with Image.open(path) as im:
                    im.load()  # decodes: a truncated or corrupt file fails here, not in a training step
                    entry["shape"] = list(im.size)
            except (OSError, SyntaxError, ValueError) as e:
                entry["error"] = str(e)
            self.entries[name], self.changed = entry, True
        if "error" in entry:
            return f"{name}: {entry['error']}"
        if size is not None and tuple(entry["shape"]) != (size, size):
            return f"{name} is {entry['shape'][0]}×{entry['shape'][1]}, not {size}×{size}"
        return None

    def save(self) -> None:
        """Write the manifest if anything new was validated (atomically; a read-only folder just keeps none)."""
        import os
        if not self.changed:
            return
        tmp = self.path.with_name(f"manifest.json.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.entries))
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)


class PseudoGTDataset(torch.utils.data.Dataset):
    """A folder written by `pseudo_gt.write_dataset`: image (3, H, W) in [0, 1], mask (H, W) long, has_classes (),
    prompt, index; also instance (H, W) long when the items have one (experiments/tables.py's real-scene sets).
    Validated when opened: a line that is not a JSON record with the expected keys, a missing, undecodable or
    wrong-size PNG makes its item bad; bad items are left out, counted and named (`bad`). What decoding found is
    cached in FOLDER/manifest.json (`Manifest`), so later opens only stat the files (`decoded` counts the files this
    open decoded). `raw=True` (the training loader) keeps image (3, H, W) and masks (H, W) uint8, for the device
    to convert (`batch_to_device`)."""

    KEYS = ("index", "image", "mask", "has_classes", "prompt")

    def __init__(self, folder, quiet: bool = False, raw: bool = False):
        self.folder, self.raw = Path(folder), raw
        if not (self.folder / "meta.json").exists():
            raise FileNotFoundError(f"{self.folder} holds no pseudo-GT dataset (meta.json missing); "
                                    f"write one with: python pseudo_gt.py --preset toy --num-images N --out {folder}")
        self.meta = json.loads((self.folder / "meta.json").read_text())
        size = self.meta.get("size")
        records, self.unreadable_lines = {}, 0
        for rec in jsonl_records(self.folder):
            if rec is None or any(k not in rec for k in self.KEYS):  # a torn last line after a crash, too
                self.unreadable_lines += 1
                continue
            records[rec["index"]] = rec  # a rewritten item's later line wins
        self.records, self.bad, self.bad_records = [], {}, []
        manifest = Manifest(self.folder)
        for i in sorted(records):
            rec, why = records[i], None
            for key in ("image", "mask", "instance")[:3 if "instance" in rec else 2]:
                why = manifest.check(rec[key], size)
                if why:
                    break
            if why:
                self.bad[rec["index"]] = why
                self.bad_records.append(rec)
            else:
                self.records.append(rec)
        manifest.save()
        self.decoded = manifest.decoded
        if (self.bad or self.unreadable_lines) and not quiet:
            names = "; ".join(list(self.bad.values())[:5]) + (" …" if len(self.bad) > 5 else "")
            print(f"[data] {self.folder}: left out {len(self.bad)} bad items and {self.unreadable_lines} unreadable "
                  f"lines{': ' + names if names else ''} (python train.py --data {folder} --check-data)", flush=True)
        if not self.records:
            raise ValueError(f"{self.folder} holds no readable items")
        self.num_classes = len(self.meta["classes"])

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image
        rec = self.records[i]
        image = torch.from_numpy(np.asarray(Image.open(self.folder / rec["image"]).convert("RGB")).copy())
        label = {k: torch.from_numpy(np.asarray(Image.open(self.folder / rec[k])).copy())
                 for k in ("mask", "instance") if k in rec}  # (H, W) uint8 each
        image = image.permute(2, 0, 1)  # (3, H, W) uint8
        if not self.raw:
            image, label = image.float() / 255.0, {k: v.long() for k, v in label.items()}
        return {"image": image, **label,
                "has_classes": torch.tensor(bool(rec["has_classes"])), "prompt": rec["prompt"],
                "index": torch.tensor(rec["index"])}


def ensure_dataset(folder, num_images: int | None, extend: bool, write=None, default: int = 512) -> None:
    """Use the dataset in `folder` as it is. A missing one is written by `write(folder, n)` (the toy preset's writer;
    None: refuse) with `num_images` items (None: `default`), and one a crashed writer left short is finished. A
    given `num_images` must match an existing dataset's size unless `extend` grows it."""
    folder = Path(folder)
    n = default if num_images is None else num_images
    if (folder / "meta.json").exists():
        done = len(read_done(folder))
        target = json.loads((folder / "meta.json").read_text()).get("num_images", done)
        if num_images is not None and num_images != target and not extend:
            raise SystemExit(f"--data {folder} holds a dataset of {target} images; --num-images {num_images} "
                             f"would change it: pass --extend-data to grow it, or choose another --data")
        n = max(target, num_images or 0)
        if done >= n:
            return
    if write is None:
        raise SystemExit(f"--data {folder} holds no complete pseudo-GT dataset; write one with pseudo_gt.py "
                         f"--preset paper")
    write(folder, n)


def check_dataset(folder, repair=None) -> dict:
    """What `python train.py --check-data` prints: the items, the bad ones and why, unreadable index lines. With
    `repair` (a function of (folder, num_images), e.g. toy.dataset.write_toy_dataset) the bad items' files are
    removed and `repair` writes them again from their seeds (item i is always seeded by seed + i)."""
    ds = PseudoGTDataset(folder, quiet=True)
    report = {"items": len(ds) + len(ds.bad), "bad": ds.bad, "unreadable_lines": ds.unreadable_lines}
    if repair is not None and ds.bad:
        for rec in ds.bad_records:
            for key in ("image", "mask"):
                (ds.folder / rec[key]).unlink(missing_ok=True)
        repair(ds.folder, ds.meta.get("num_images", report["items"]))
        report["repaired"] = len(PseudoGTDataset(folder, quiet=True).bad) == 0
    return report


class FrozenCache:
    """Per-item outputs of a model's frozen parts, `compute(images) → {name: (B, ...)}`, computed the first time an
    item (by its "index") is seen, one item at a time so that no value depends on the batch it came in, and added
    to every batch that holds the item (`fill`). For a fixed dataset and frozen, deterministic parts only: GLASS's
    encoder tokens and VAE moments (`GLASS.frozen_outputs`; train.py --cache-frozen)."""

    def __init__(self, compute):
        self.compute, self.store = compute, {}

    @torch.no_grad()
    def fill(self, batch: dict) -> dict:
        indices = batch["index"].tolist()
        for j, i in enumerate(indices):
            if i not in self.store:
                self.store[i] = {k: v[0] for k, v in self.compute(batch["image"][j:j + 1]).items()}
        names = self.store[indices[0]].keys()
        return {**batch, **{k: torch.stack([self.store[i][k] for i in indices]) for k in names}}


# ---------------------------------------------------------------------------------------------------------------
# the writer's file mechanics (pseudo_gt.write_dataset): atomic files, a record per item, one writer per rank
# ---------------------------------------------------------------------------------------------------------------

def save_png_atomic(array: np.ndarray, path: Path) -> None:
    from PIL import Image
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # unique per process: writers never share a temp file
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)  # a crash leaves either no file or a whole one


def jsonl_records(folder: Path):
    """Every line of the folder's items-rank*.jsonl files, in file order: its record (a dict), or None for a line
    that is not UTF-8, not JSON or not an object (a torn last line after a crash). The one reader of item logs."""
    for jl in sorted(Path(folder).glob("items-rank*.jsonl")):
        for line in jl.read_bytes().splitlines():
            try:
                rec = json.loads(line.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
                rec = None
            yield rec if isinstance(rec, dict) else None


def read_done(out: Path, keys: tuple = ("image", "mask")) -> set:
    """Indices already written (lines of every items-*.jsonl naming files under `keys` that exist); a torn last line
    is ignored."""
    done = set()
    for rec in jsonl_records(out):
        try:
            if rec is not None and all((out / rec[k]).exists() for k in keys):
                done.add(rec["index"])
        except (KeyError, TypeError):  # not a record of this writer: not done
            continue
    return done


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def repair_jsonl(path: Path) -> None:
    """Cut a torn last line (a crash mid-write) so appends start on a fresh line."""
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])


class ItemWriter:
    """The one writer of a dataset folder in this layout. `write(i, arrays, record)` saves each array as
    {key}s/{i:07d}.png (atomically), then appends {"index": i, key: path, ..., **record} to items-rank{r}.jsonl,
    fsynced: a record is written only after its files, so a crash at any point leaves either a whole item or one
    that `done` leaves out and a rerun writes again. `done`: the indices already written with every key's file."""

    def __init__(self, out: Path, rank: int = 0, keys: tuple = ("image", "mask")):
        self.out, self.keys = Path(out), keys
        for key in keys:
            (self.out / f"{key}s").mkdir(parents=True, exist_ok=True)
        self.jsonl = self.out / f"items-rank{rank}.jsonl"
        repair_jsonl(self.jsonl)
        self.done = read_done(self.out, keys)

    def write(self, index: int, arrays: dict, record: dict) -> None:
        files = {key: f"{key}s/{index:07d}.png" for key in self.keys}
        for key in self.keys:
            save_png_atomic(arrays[key], self.out / files[key])
        append_jsonl(self.jsonl, {"index": index, **files, **record})
        self.done.add(index)


@contextlib.contextmanager
def writer_lock(out: Path, rank: int):
    """Hold an exclusive lock on out/.writer-rank{r}.lock while writing: a second writer of the same folder and rank
    is refused, and the OS frees the lock when its process ends, even on kill -9 (fcntl.flock; POSIX)."""
    import fcntl
    with open(out / f".writer-rank{rank}.lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another writer is writing {out} (rank {rank}); wait for it to finish") from None
        yield


# what makes items alike: a resumed or sharded write must use the same (the tagger decides which nouns are classes)
WRITER_SETTINGS = ("preset", "classes", "mask", "size", "steps", "guidance", "negative_prompt", "scheduler", "seed",
                   "sd", "captioner", "tagger", "dtype")


def check_settings(out: Path, meta: dict, num_images: int, extend: bool) -> None:
    """A dataset is written once: continuing it needs the settings it was written with, and more items than its
    target need `extend`. Raises ValueError naming every mismatch."""
    old, meta = json.loads((out / "meta.json").read_text()), json.loads(json.dumps(meta))  # tuples as JSON lists
    diff = [f"{k}: dataset {old.get(k)!r}, asked {meta[k]!r}" for k in WRITER_SETTINGS if old.get(k) != meta[k]]
    if diff:
        raise ValueError(f"{out} was written with other settings ({'; '.join(diff)}); write to a new --out, or "
                         f"use the dataset's settings (its meta.json)")
    target = old.get("num_images", len(read_done(out)))
    if num_images > target and not extend:
        raise ValueError(f"{out} holds a dataset of {target} images; writing {num_images} would add to it: pass "
                         f"--extend (extend=True) to do so, or choose another --out")


def load_image_sources(images_dir: Path) -> tuple[list, int]:
    """The image files of a folder whose headers read, in name order, and how many were skipped. Only headers are
    checked here (a COCO-sized folder does not fit in memory decoded); each batch decodes its own images."""
    from PIL import Image, UnidentifiedImageError
    good, skipped = [], 0
    for p in sorted(p for p in images_dir.iterdir() if p.is_file()):
        try:
            with Image.open(p) as im:
                im.verify()
            good.append(p)
        except (UnidentifiedImageError, OSError) as e:
            warnings.warn(f"skipping unreadable image {p.name}: {e}")
            skipped += 1
    return good, skipped
