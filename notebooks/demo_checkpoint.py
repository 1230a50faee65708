"""Which GLASS checkpoint a notebook shows, and a plain sentence about it.

    from demo_checkpoint import notebook_checkpoint
    ckpt = notebook_checkpoint(phase=1)     # runs/toy/phase1 after `python train.py --phase 2`

The quick start's checkpoint when it exists. Otherwise (and always under GLASS_FAST=1, the small setting CI runs
notebooks in) a demo model of a few dozen steps is trained into runs/notebook_fast in about a minute, and the
notebook says so: its masks then come from an almost untrained model and show the code paths, not the method.
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fast_mode() -> bool:
    """GLASS_FAST=1: every code path at tiny budgets (what CI runs)."""
    return os.environ.get("GLASS_FAST", "0") == "1"


def notebook_checkpoint(phase: int = 2) -> Path:
    """runs/toy/phase{phase} from the quick start, or the short demo model (trained here if missing), announced."""
    ckpt = ROOT / "runs" / "toy" / f"phase{phase}"
    if (ckpt / "config.json").exists() and not fast_mode():
        print(f"checkpoint: {ckpt.relative_to(ROOT)} (the quick start's model)")
        return ckpt
    out = ROOT / "runs" / "notebook_fast"
    why = "GLASS_FAST=1" if fast_mode() else f"{ckpt.relative_to(ROOT)} does not exist"
    print(f"DEMO MODEL ({why}): 20 steps of phase 1 on 32 images, almost untrained. Its masks show what the code "
          f"draws, not what GLASS learns. For the real model run `python train.py --phase 2` (the README gives "
          f"its time on 2 CPU cores) and rerun this notebook.")
    if not (out / f"phase{phase}" / "config.json").exists():
        command = [sys.executable, "train.py", "--phase", str(phase), "--out", str(out), "--data",
                   str(ROOT / "data" / "notebook_fast"), "--num-images", "32", "--steps1", "20", "--steps2", "10",
                   "--batch-size", "8", "--eval-images", "0", "--workers", "0", "--log-every", "10"]
        print(" ".join(command[1:]))  # what a reader would type
        subprocess.run(command, cwd=ROOT, check=True)
    return out / f"phase{phase}"
