"""slot_attention.py, matching.py, metrics.py, experiments/slot_priors.py and infra/data.py must work when copied
alone into another project; the import graph has no circle, the core model imports nothing of the experiments,
and only the experiments that train rows import train.py."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SNIPPETS = {
    "slot_attention.py": "import torch, slot_attention as m; print(m.SlotAttention(3, 8)(torch.randn(1, 5, 8)).attn.shape)",
    "matching.py": "import torch, matching as m; print(m.hungarian_match(torch.rand(3, 2)))",
    "infra/data.py": "import data as m; print(m.StepSampler(10, 2, seed=0, start_step=0).indices_of_step(3))",
    "experiments/slot_priors.py": "import torch, slot_priors as m; print(m.BoxInit(8)(m.slot_prior(torch.ones(1, 4, 4).long(), 3).boxes))",
    "metrics.py": "import torch, metrics as m; print(m.miou(torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.long)))",
}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_module_imports_from_a_folder_that_holds_only_it(name, tmp_path):
    shutil.copy(ROOT / name, tmp_path / Path(name).name)
    result = subprocess.run([sys.executable, "-c", SNIPPETS[name]], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "", "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr


def files_of_graph() -> dict:
    """module name → file of every project module: the top level and the toy, infra, experiments, scripts folders."""
    files = {p.stem: p for p in ROOT.glob("*.py")}
    for package in ("toy", "infra", "experiments", "scripts"):
        files.update({f"{package}.{p.stem}": p for p in (ROOT / package).glob("*.py")
                      if p.stem not in ("__init__", "__main__")})
    return files


def project_imports() -> dict:
    """module → the project modules it imports anywhere in its source (top level or inside functions)."""
    import ast
    files = files_of_graph()
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in files}
            elif isinstance(node, ast.ImportFrom) and node.module in files:
                deps.add(node.module)
            elif isinstance(node, ast.ImportFrom) and node.module in ("toy", "infra", "experiments", "scripts"):
                deps |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in files}
        graph[name] = deps - {name}
    return graph


def test_no_import_circle_and_no_module_calls_another_modules_main():
    graph = project_imports()
    assert graph["glass"] == {"slot_attention", "matching", "infra.loading"} and graph["train"] >= {"glass"}
    lab = {m for m in graph if m.startswith(("experiments.", "scripts."))}
    into_lab = {m: deps & lab for m, deps in graph.items() if m not in lab and deps & lab}
    assert into_lab == {"infra.checkpoint": {"experiments.prior_model"}, "downstream": {"experiments.slot_priors"}}, \
        f"the method imports the lab only where docs/design.md §2 says: {into_lab}"
    importers = {m for m, deps in graph.items() if "train" in deps}
    assert importers <= {"experiments.tables", "experiments.ladder", "scripts.bench", "scripts.paper_compute"}, \
        f"only what trains rows imports train: {importers}"
    for notebook in (ROOT / "notebooks").glob("*.py"):
        assert "import train" not in notebook.read_text() and "from train" not in notebook.read_text(), notebook

    def reaches(start, target, seen=()):
        return any(d == target or (d not in seen and reaches(d, target, (*seen, d))) for d in graph[start])

    circles = [m for m in graph if reaches(m, m)]
    assert not circles, f"import circles through {circles}"
    for name, path in files_of_graph().items():
        text = path.read_text()
        assert not any(f"{m.rpartition('.')[2]}.main(" in text for m in graph if m != name), path.name
