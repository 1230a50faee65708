"""The toy preset's pseudo-GT dataset: what `python train.py` writes when --data does not exist yet, and rewrites
bad items of with --check-data --repair-data. The same as `python pseudo_gt.py --preset toy --num-images N --out
DIR` with the run's own pipeline; item i is always seeded by i, so a repaired or resumed dataset is the same.
Checked by tests/test_reliability.py (repair) and tests/test_train.py (a run writes its dataset).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pseudo_gt
from infra.loading import quiet_loading


def write_toy_dataset(folder: Path, num_images: int, sd: str, extend: bool = False, captioner: str = "toy") -> None:
    """The toy preset's dataset from pipeline `sd`, what train.py writes when --data is missing; captioner
    "toy-labels" (GLASS†'s prompts, Tab. 2) names a dataset of its own. Writer errors end the process with a line."""
    print(f"[data] writing the toy pseudo-GT dataset: {num_images} images → {folder} (python pseudo_gt.py --preset "
          f"toy --num-images {num_images} --out {folder}{'' if captioner == 'toy' else ' --captioner ' + captioner})",
          flush=True)
    t0 = time.time()
    with quiet_loading():
        pipe = pseudo_gt.load_pipeline(sd)
    preset = replace(pseudo_gt.PRESETS["toy"], sd=sd, name=captioner, captioner=captioner)
    try:
        pseudo_gt.write_dataset(Path(folder), preset, num_images, pipe=pipe, batch_size=16, extend=extend)
    except (ValueError, RuntimeError) as e:  # other settings, or another writer on the folder
        raise SystemExit(f"[data] {e}")
    print(f"[data] done in {time.time() - t0:.0f}s", flush=True)
