"""The notebooks' first cell, once: the project root on the import path, the hub offline, tqdm's ipywidgets notice
silenced, 2 torch threads, and the small setting CI runs (GLASS_FAST=1). `FAST = setup()` returns that switch."""
import os
import sys
import warnings

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def setup(threads: int = 2) -> bool:
    """Prepare a notebook's kernel; True in the small setting (GLASS_FAST=1)."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)  # the project root: notebooks import its modules
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers and diffusers load
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets: text bars
    import torch
    torch.set_num_threads(threads)
    fast = os.environ.get("GLASS_FAST", "0") == "1"
    print("fast mode" if fast else "full mode")
    return fast
