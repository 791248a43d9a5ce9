"""all-MiniLM-L6-v2 as an int8 ONNX graph: the offline default embedder (the `local` provider).

The model and tokenizer ship in assets/all-minilm-l6-v2/ (made by tools/export_local_model.py) and
load only if they match SHA256SUMS. Pooling and L2 normalisation are inside the graph.

Each text runs through the graph on its own, unpadded. Dynamic int8 quantisation picks one
activation scale per MatMul input tensor, so in a padded batch a text's vector would depend on
its batch mates and on the padding: measured up to 0.028 per component apart (cosine 0.989 to
the same text embedded alone). Alone, a text always gets the same vector, which caching,
deduplication and exact re-queries rely on. The cost, measured at one intra-op thread: none on
mixed-length input, where padding wastes more than batching gains; roughly a third less
throughput on batches of equal-length texts. Memory stays bounded by one text at a time.

Thread-safe: InferenceSession.run and Tokenizer.encode can be called from several threads at
once, and the tokenizer's settings are fixed here at construction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

ASSETS = Path(__file__).resolve().parent / "assets" / "all-minilm-l6-v2"
MODEL_FILE = "model_int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
SUMS_FILE = "SHA256SUMS"
MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers, special tokens included
OUTPUT = "sentence_embedding"


class ModelIntegrityError(RuntimeError):
    """A model file is missing from SHA256SUMS or its contents do not match."""


def read_checksums(model_dir: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in (model_dir / SUMS_FILE).read_text(encoding="ascii").splitlines():
        digest, _, name = line.partition("  ")
        sums[name.strip()] = digest.strip()
    return sums


def read_verified(path: Path, sums: dict[str, str]) -> bytes:
    """The file's bytes, read once, so the checked bytes are the ones loaded."""
    expected = sums.get(path.name)
    if expected is None:
        raise ModelIntegrityError(f"{path}: not listed in {path.parent / SUMS_FILE}")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelIntegrityError(
            f"{path}: sha256 {actual} does not match {expected} in {SUMS_FILE}; "
            "the file is corrupt or was changed without re-running export_local_model"
        )
    return data


class LocalEmbedder:
    def __init__(self, model_dir: Path | None = None, intra_op_threads: int = 1) -> None:
        model_dir = Path(model_dir) if model_dir is not None else ASSETS
        sums = read_checksums(model_dir)
        model_bytes = read_verified(model_dir / MODEL_FILE, sums)
        tokenizer_bytes = read_verified(model_dir / TOKENIZER_FILE, sums)

        self._tokenizer = Tokenizer.from_str(tokenizer_bytes.decode("utf-8"))
        # The upstream tokenizer.json truncates at 128 and pads to 128: override both.
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.no_padding()

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2"

    @property
    def dimension(self) -> int:
        return 384

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (len(texts), 384), rows L2-normalised, in input order; over 256 tokens is cut."""
        if isinstance(texts, str):
            raise TypeError("texts: expected a sequence of strings, got a single str")
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = np.array([self._tokenizer.encode(text).ids], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            vectors[row] = self._session.run([OUTPUT], feeds)[0][0]
        return vectors
