"""Notebooks: every jupytext `.py` is paired with an `.ipynb` holding the same cells, and every notebook runs
headless in the small setting (GLASS_FAST=1), without writing over its stored outputs."""
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

NB = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NB.glob("[0-9][0-9]_*.py"))


def cells(nb) -> list:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_notebook_is_paired_and_in_sync():
    assert len(SOURCES) == 5
    assert {p.stem for p in SOURCES} == {p.stem for p in NB.glob("*.ipynb")}
    for py in SOURCES:
        ipynb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
        assert cells(jupytext.read(py)) == cells(ipynb), f"{py.name} and its .ipynb differ: run jupytext --sync"
        assert ipynb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs(py, monkeypatch):
    monkeypatch.setenv("GLASS_FAST", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = jupytext.read(py)
    assert any(c.cell_type == "code" for c in nb.cells)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NB)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
