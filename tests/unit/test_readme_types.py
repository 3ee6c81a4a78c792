"""The README's Python examples type-check under `mypy --strict`, run the way a user of
the installed package runs it (from another directory, reading our `py.typed`), so the
documented API and its annotations cannot drift apart (issue 11)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_blocks() -> list[str]:
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_python_examples():
    blocks = readme_blocks()
    assert blocks
    assert any('event.type == "content"' in block for block in blocks)


def test_readme_python_blocks_pass_mypy_strict(tmp_path: Path):
    files = []
    for number, block in enumerate(readme_blocks(), 1):
        file = tmp_path / f"readme_example_{number}.py"
        file.write_text(block, encoding="utf-8")
        files.append(str(file))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *files],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
