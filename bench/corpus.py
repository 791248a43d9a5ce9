"""Real text embedded by the local model, for benchmarks that need real vectors (recall on
uniform random vectors says nothing about recall on embeddings).

The text is paragraphs of docstrings of installed Python code: offline, and on every machine
that runs Citadel. It comes first from the base interpreter (standard library and its
site-packages), which `pip install` into the project's venv does not change, so the corpus
stays the same while the venv's packages come and go; the venv's packages are read only when
the base interpreter has too little. Within each, order is fixed by a hash of each paragraph.
Texts and vectors are cached under bench/.cache/ (git-ignored): embedding takes minutes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import sys
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
_TRIPLE_QUOTED = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)
_MAX_CHARS = 600  # keeps embedding time per text bounded; the model reads 256 tokens at most


@dataclass
class Corpus:
    texts: list[str]
    packages: list[str]  # the top-level package (or stdlib module) each text comes from
    vectors: np.ndarray  # float32 (n, 384), rows L2-normalised


def load(n: int) -> Corpus:
    """The first n texts of the corpus with their vectors; only texts no earlier run embedded
    are embedded now."""
    CACHE.mkdir(parents=True, exist_ok=True)
    pairs = _cached_paragraphs(_base_roots())
    if len(pairs) < n:
        seen = {t for _, t in pairs}
        pairs += [(p, t) for p, t in paragraphs([_venv_root()]) if t not in seen]
    if len(pairs) < n:
        raise RuntimeError(f"only {len(pairs)} docstring paragraphs installed; {n} needed")
    texts, packages = [t for _, t in pairs[:n]], [p for p, _ in pairs[:n]]
    return Corpus(texts=texts, packages=packages, vectors=_vectors(texts))


def _cached_paragraphs(roots: list[Path]) -> list[tuple[str, str]]:
    parts = [sys.version] + [f"{root}/{entry.name}" for root in roots for entry in sorted(root.iterdir())]
    cached = CACHE / f"docstrings-{digest(parts)}.json"
    if cached.exists():
        return [tuple(pair) for pair in json.loads(cached.read_text())]
    pairs = paragraphs(roots)
    cached.write_text(json.dumps(pairs))
    return pairs


def _vectors(texts: list[str]) -> np.ndarray:
    """Vectors from the cache of every text embedded so far, embedding the missing ones."""
    known_file, vectors_file = CACHE / "minilm-texts.json", CACHE / "minilm-vectors.npy"
    known: list[str] = json.loads(known_file.read_text()) if known_file.exists() else []
    cached = np.load(vectors_file) if vectors_file.exists() else np.empty((0, 384), np.float32)
    row = {t: i for i, t in enumerate(known)}
    missing = [t for t in dict.fromkeys(texts) if t not in row]
    if missing:
        cached = np.concatenate([cached, embed(missing)])
        known += missing
        row.update({t: len(known) - len(missing) + i for i, t in enumerate(missing)})
        np.save(vectors_file, cached)
        known_file.write_text(json.dumps(known))
    return cached[[row[t] for t in texts]]


def paragraphs(roots: list[Path]) -> list[tuple[str, str]]:
    """(package, paragraph) for every distinct docstring paragraph of 40+ mostly-letter chars
    in Python files under roots, in hash order."""
    found: dict[str, str] = {}
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "site-packages")  # each is a root of its own
            for name in sorted(f for f in files if f.endswith(".py")):
                path = Path(dirpath) / name
                try:
                    source = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                package = path.relative_to(root).parts[0].removesuffix(".py")
                for m in _TRIPLE_QUOTED.finditer(source):
                    for para in inspect.cleandoc(m.group(1) or m.group(2) or "").split("\n\n"):
                        text = " ".join(para.split())[:_MAX_CHARS]
                        if len(text) >= 40 and sum(c.isalpha() for c in text) > 0.6 * len(text):
                            found.setdefault(text, package)
    ordered = sorted(found, key=lambda t: hashlib.sha1(t.encode()).digest())
    return [(found[t], t) for t in ordered]


def embed(texts: list[str]) -> np.ndarray:
    """The local model's vectors, two threads at a time (onnxruntime releases the GIL)."""
    from citadel.server.models.local import LocalEmbedder

    embedder = LocalEmbedder()
    chunks = [texts[i : i + 500] for i in range(0, len(texts), 500)]
    started = time.monotonic()
    out = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, vectors in enumerate(pool.map(embedder.embed, chunks)):
            out.append(vectors)
            if (i + 1) % 20 == 0:
                done = sum(len(v) for v in out)
                rate = done / (time.monotonic() - started)
                print(
                    f"  embedded {done:,}/{len(texts):,} texts ({rate:,.0f}/s)", file=sys.stderr, flush=True
                )
    return np.concatenate(out).astype(np.float32)


def digest(parts) -> str:
    """A short stable name for derived data (caches keyed by what they were made from)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _base_roots() -> list[Path]:
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
    return [Path(base["stdlib"]), Path(base["purelib"])]


def _venv_root() -> Path:
    return Path(sysconfig.get_paths()["purelib"])
