"""Documentation that is copied from code must not go stale."""

from __future__ import annotations

from pathlib import Path

import human.errors

ROOT = Path(__file__).resolve().parents[2]


def test_readme_error_tree_matches_errors_module():
    tree = human.errors.__doc__.split("\n\n")[1].strip("\n")
    assert tree in (ROOT / "README.md").read_text()


def test_readme_mentions_every_exported_error():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in human.errors.__all__ if name.endswith("Error") and name not in readme
               and name != "ClientClosedError"]
    assert missing == []
