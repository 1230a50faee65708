"""Run notebooks headless and store their outputs in the paired `.ipynb`.

Each notebook's source of truth is its jupytext percent-format `.py` (edit it, or edit the `.ipynb` in Jupyter with
jupytext installed and both stay paired). This script reads the `.py`, executes it with nbclient in this folder and
writes the `.ipynb` with outputs:

    python notebooks/execute.py                  # all five, full setting (uses runs/toy from the quick start)
    GLASS_FAST=1 python notebooks/execute.py 03  # one notebook, the small setting CI uses
"""
import argparse
from pathlib import Path

import jupytext
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(py: Path, timeout: int = 1800) -> Path:
    """Execute the notebook of `py` and write it, with outputs, to the paired .ipynb."""
    nb = jupytext.read(py)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    out = py.with_suffix(".ipynb")
    jupytext.write(nb, out)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("only", nargs="*", help="notebook name prefixes (default: all)")
    args = ap.parse_args()
    for py in sorted(HERE.glob("[0-9][0-9]_*.py")):
        if not args.only or any(py.name.startswith(o) for o in args.only):
            print("executed", execute(py).name, flush=True)
