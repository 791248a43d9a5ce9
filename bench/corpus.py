"""Real text embedded by the local model, for benchmarks that need real vectors (recall on
uniform random vectors says nothing about recall on embeddings).

The text is paragraphs of docstrings from the Python standard library and the installed
packages: offline, and on every machine that runs Citadel. Order is fixed by a hash of each
paragraph, so a given set of installed packages always yields the same corpus. Texts and
vectors are cached under bench/.cache/ (git-ignored): embedding 100k texts takes minutes.
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
    """The first n texts of the corpus with their vectors; only texts not embedded by an
    earlier run are embedded now (installing a package changes the corpus a little)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    texts_file = CACHE / f"docstrings-{_fingerprint()}-{n}.json"
    if texts_file.exists():
        raw = json.loads(texts_file.read_text())
    else:
        pairs = paragraphs()
        if len(pairs) < n:
            raise RuntimeError(f"only {len(pairs)} docstring paragraphs installed; {n} needed")
        raw = {"texts": [t for _, t in pairs[:n]], "packages": [p for p, _ in pairs[:n]]}
        texts_file.write_text(json.dumps(raw))
    return Corpus(texts=raw["texts"], packages=raw["packages"], vectors=_vectors(raw["texts"]))


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


def paragraphs() -> list[tuple[str, str]]:
    """(package, paragraph) for every distinct docstring paragraph of 40+ mostly-letter chars."""
    found: dict[str, str] = {}
    for root in _roots():
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "site-packages")  # the venv's are read once
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


def _roots() -> list[Path]:
    paths = sysconfig.get_paths()
    return [Path(paths["stdlib"]), Path(paths["purelib"])]


def _fingerprint() -> str:
    """Changes when Python or the installed packages change, and with them the corpus."""
    parts = [sys.version]
    for root in _roots():
        parts += sorted(p.name for p in root.iterdir())
    return digest(parts)
