"""docs/providers.md is generated from the registry and must not go stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from human.config.registry import builtin_rows

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_provider_docs.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)


def test_docs_providers_md_is_up_to_date():
    result = run("--check")
    assert result.returncode == 0, result.stderr


def test_check_fails_on_a_stale_page(tmp_path: Path):
    stale = tmp_path / "providers.md"
    stale.write_text("# Providers\n\nhand-edited\n", encoding="utf-8")
    result = run("--check", "--output", str(stale))
    assert result.returncode == 1 and "stale" in result.stderr


def test_generated_page_lists_every_row_and_each_correction(tmp_path: Path):
    page = tmp_path / "providers.md"
    assert run("--output", str(page)).returncode == 0
    text = page.read_text(encoding="utf-8")
    for row in builtin_rows():
        assert f"| `{row.name}`" in text
        if row.reference_base_url:
            assert f"`{row.reference_base_url}` -> `{row.base_url}`" in text
