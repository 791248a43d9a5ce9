"""LocalEmbedder, the offline default model, on its shipped assets (no torch needed)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from citadel.server.models.local import ASSETS, LocalEmbedder, ModelIntegrityError

# Per-text cosine to float32 sentence-transformers that the int8 model must keep.
REFERENCE_MIN_COSINE = 0.99
# Same text, same vector: runs in one process agree to float rounding.
SAME_TEXT_ATOL = 1e-5


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(scope="module")
def reference() -> list[dict]:
    document = json.loads((ASSETS / "reference_vectors.json").read_text(encoding="utf-8"))
    return document["items"]


def test_name_and_dimension(embedder: LocalEmbedder) -> None:
    assert embedder.name == "all-MiniLM-L6-v2"
    assert embedder.dimension == 384


def test_matches_sentence_transformers_reference(embedder: LocalEmbedder, reference: list[dict]) -> None:
    """Per-text cosine >= 0.99 with float32 sentence-transformers on 21 varied texts (prose,
    code, SQL, German, accents, Japanese, Russian, emoji, a text over 256 tokens, "a", "!!!",
    "" and whitespace). Measured at export: min 0.9939 (on "!!!"), mean 0.9982."""
    texts = [item["text"] for item in reference]
    expected = np.array([item["vector"] for item in reference], dtype=np.float32)
    vectors = embedder.embed(texts)
    assert vectors.shape == (len(texts), 384)
    assert vectors.dtype == np.float32
    cosines = np.sum(vectors * expected, axis=1) / np.linalg.norm(expected, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= REFERENCE_MIN_COSINE, f"cosine {cosines[worst]:.4f} on {texts[worst]!r}"


def test_rows_are_unit_length(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed(["a short one", "", "a somewhat longer sentence about vector search"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batch_equals_single(embedder: LocalEmbedder) -> None:
    texts = [f"support ticket {i}: the export to {fmt} fails" for i, fmt in enumerate(("csv", "pdf", "json"))]
    batch = embedder.embed(texts)
    for row, text in enumerate(texts):
        np.testing.assert_allclose(batch[row], embedder.embed([text])[0], atol=SAME_TEXT_ATOL)


def test_mixed_lengths_equal_individual_results(embedder: LocalEmbedder) -> None:
    texts = ["hi", "a medium length sentence about databases", "word " * 120, "", "ok then"]
    batch = embedder.embed(texts)
    individual = np.stack([embedder.embed([text])[0] for text in texts])
    np.testing.assert_allclose(batch, individual, atol=SAME_TEXT_ATOL)


def test_order_is_preserved(embedder: LocalEmbedder) -> None:
    texts = ["first: apples", "second: a train timetable", "third: quantum chromodynamics", "fourth: jazz"]
    forward = embedder.embed(texts)
    backward = embedder.embed(texts[::-1])
    np.testing.assert_allclose(backward, forward[::-1], atol=SAME_TEXT_ATOL)
    # Distinct texts give distinct rows, so a reordering would have been caught.
    assert np.all(np.triu(forward @ forward.T, k=1) < 0.99)


def test_more_than_256_tokens_is_truncated(embedder: LocalEmbedder) -> None:
    long_text = "The gateway embeds documents before storing them. " * 200  # about 2,000 tokens
    vectors = embedder.embed([long_text, long_text + " Everything here lies past the limit."])
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(vectors[0], vectors[1], atol=SAME_TEXT_ATOL)


def test_many_texts_keep_their_rows(embedder: LocalEmbedder) -> None:
    texts = [f"item number {i}" for i in range(70)]
    vectors = embedder.embed(texts)
    assert vectors.shape == (70, 384)
    np.testing.assert_allclose(vectors[69], embedder.embed(["item number 69"])[0], atol=SAME_TEXT_ATOL)


def test_empty_input(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_a_bare_string_is_refused(embedder: LocalEmbedder) -> None:
    with pytest.raises(TypeError, match="single str"):
        embedder.embed("not a list")


def test_concurrent_threads_get_the_same_vectors(embedder: LocalEmbedder) -> None:
    texts = ["thread safety", "of the onnx session", "and the tokenizer", "under four threads"]
    expected = embedder.embed(texts)
    results: dict[int, object] = {}

    def work(slot: int) -> None:
        try:
            results[slot] = embedder.embed(texts)
        except BaseException as error:  # surfaced by the assert below
            results[slot] = error

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [0, 1, 2, 3]
    for result in results.values():
        assert isinstance(result, np.ndarray), result
        np.testing.assert_allclose(result, expected, atol=SAME_TEXT_ATOL)


def test_corrupt_model_file_is_refused_by_name(tmp_path: Path) -> None:
    model_dir = tmp_path / "all-minilm-l6-v2"
    shutil.copytree(ASSETS, model_dir)
    model = model_dir / "model_int8.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="model_int8.onnx"):
        LocalEmbedder(model_dir)
