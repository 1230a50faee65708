"""slot_attention.py, matching.py and metrics.py must work when copied alone into another project."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SNIPPETS = {
    "slot_attention.py": "import torch, slot_attention as m; print(m.SlotAttention(3, 8)(torch.randn(1, 5, 8)).attn.shape)",
    "matching.py": "import torch, matching as m; print(m.hungarian_match(torch.rand(3, 2)))",
    "metrics.py": "import torch, metrics as m; print(m.miou(torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.long)))",
}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_module_imports_from_a_folder_that_holds_only_it(name, tmp_path):
    shutil.copy(ROOT / name, tmp_path / name)
    result = subprocess.run([sys.executable, "-c", SNIPPETS[name]], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "", "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
