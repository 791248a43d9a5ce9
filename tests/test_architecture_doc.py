"""ARCHITECTURE.md stays true: every file or folder it names exists, and no document in the
repository points outside it (the design notes beside the repo are not shipped)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def named_paths(text: str) -> set[str]:
    """Backticked names that look like repository paths (`server/chain.py`, `adapters/`, `x.py`)."""
    found = set()
    for name in re.findall(r"`([A-Za-z0-9_./{},-]+)`", text):
        if "/" in name or name.endswith(".py"):
            found.add(name)
    return found


def resolves(name: str, bases: list[Path]) -> bool:
    if "{" in name:  # proto/citadel/{vector,batch,admin}/v1/
        head, options, tail = re.match(r"(.*)\{(.*)\}(.*)", name).groups()
        return all(resolves(head + option + tail, bases) for option in options.split(","))
    if name.startswith("/") or "<" in name:  # URL paths, templates
        return True
    return any((base / name).exists() for base in bases)


def test_every_path_architecture_md_names_exists():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    bases = [
        ROOT,
        ROOT / "server",
        ROOT / "adapters",
    ]  # "errors.py" under server/interceptors is named in full
    missing = sorted(
        n
        for n in named_paths(text)
        if not resolves(n, bases) and not any(resolves(n, [p]) for p in ROOT.glob("server/*") if p.is_dir())
    )
    assert not missing, missing


def test_no_document_links_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files", "*.md", "*.py", "*.toml"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    offenders = [
        f
        for f in tracked.split()
        if "../shared" in (ROOT / f).read_text(errors="replace") and f != "tests/test_architecture_doc.py"
    ]
    assert not offenders, offenders
