"""Path templates of google.api.http rules, parsed and matched against request paths.

Grammar (googleapis http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

`{x}` is `{x=*}`. `*` matches one segment, `**` the rest of the path (it must come last).
Matching runs on the raw (still percent-encoded) path: a single-segment variable is fully
decoded, a multi-segment one keeps `%2F` so its slashes stay distinguishable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_LITERAL = re.compile(r"[^/{}*=:]+\Z")


class TemplateError(ValueError):
    """A google.api.http path template that does not follow the grammar."""


@dataclass(frozen=True)
class Variable:
    field_path: str  # dotted request field path, e.g. "book.name"
    segments: tuple[str, ...]  # "*", "**" or literals
    group: str  # regex group name

    @property
    def multi_segment(self) -> bool:
        return len(self.segments) > 1 or self.segments == ("**",)


@dataclass(frozen=True)
class Template:
    source: str
    segments: tuple[str | Variable, ...]
    verb: str
    regex: re.Pattern[str]

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(s for s in self.segments if isinstance(s, Variable))

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Sort key: more literal segments first, then a verb, then no `**`."""
        literals = sum(1 for s in self.segments if isinstance(s, str) and s not in ("*", "**"))
        literals += sum(1 for v in self.variables for s in v.segments if s not in ("*", "**"))
        deep = any(s == "**" for s in self.segments) or any("**" in v.segments for v in self.variables)
        return (-literals, 0 if self.verb else 1, 1 if deep else 0)

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Field path → decoded value when the raw path matches, else None."""
        m = self.regex.fullmatch(raw_path)
        if m is None:
            return None
        out = {}
        for var in self.variables:
            raw = m.group(var.group)
            out[var.field_path] = _decode_multi(raw) if var.multi_segment else unquote(raw)
        return out

    def openapi_path(self) -> str:
        """The template as an OpenAPI path: each variable (and bare wildcard) one parameter."""
        parts = []
        wildcard = 0
        for seg in self.segments:
            if isinstance(seg, Variable):
                parts.append("{" + seg.field_path + "}")
            elif seg in ("*", "**"):
                parts.append(f"{{_wildcard{wildcard}}}")
                wildcard += 1
            else:
                parts.append(seg)
        return "/" + "/".join(parts) + (f":{self.verb}" if self.verb else "")


def parse(source: str) -> Template:
    if not source.startswith("/"):
        raise TemplateError(f"{source!r}: must start with '/'")
    body, verb = _split_verb(source)
    segments: list[str | Variable] = []
    for i, token in enumerate(_split_segments(body[1:], source)):
        if token.startswith("{"):
            segments.append(_variable(token, source, f"v{i}"))
        else:
            _check_segment(token, source)
            segments.append(token)
    flat = [s for seg in segments for s in (seg.segments if isinstance(seg, Variable) else (seg,))]
    if "**" in flat[:-1]:
        raise TemplateError(f"{source!r}: '**' must be the last segment")
    if len(body) < len(source) and not verb:
        raise TemplateError(f"{source!r}: ':' must be followed by a verb")
    if verb and not _LITERAL.match(verb):
        raise TemplateError(f"{source!r}: bad verb {verb!r}")
    names = [v.field_path for v in segments if isinstance(v, Variable)]
    if len(set(names)) != len(names):
        raise TemplateError(f"{source!r}: a field is bound twice")
    regex = "".join("/" + _segment_regex(seg) for seg in segments)
    if verb:
        regex += ":" + re.escape(verb)
    return Template(source, tuple(segments), verb, re.compile(regex))


def _split_verb(source: str) -> tuple[str, str]:
    depth = 0
    for i in range(len(source) - 1, -1, -1):
        c = source[i]
        if c == "}":
            depth += 1
        elif c == "{":
            depth -= 1
        elif c == "/" and depth == 0:
            return source, ""
        elif c == ":" and depth == 0:
            return source[:i], source[i + 1 :]
    return source, ""


def _split_segments(body: str, source: str) -> list[str]:
    out, current, depth = [], "", 0
    for c in body:
        if c == "{":
            depth += 1
            if depth > 1:
                raise TemplateError(f"{source!r}: nested variables are not allowed")
        elif c == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"{source!r}: unbalanced '}}'")
        if c == "/" and depth == 0:
            out.append(current)
            current = ""
        else:
            current += c
    if depth:
        raise TemplateError(f"{source!r}: unbalanced '{{'")
    out.append(current)
    return out


def _variable(token: str, source: str, group: str) -> Variable:
    if not token.endswith("}"):
        raise TemplateError(f"{source!r}: a variable must be a whole segment: {token!r}")
    inner = token[1:-1]
    field_path, _, sub = inner.partition("=")
    if not _IDENT.match(field_path):
        raise TemplateError(f"{source!r}: bad field path {field_path!r}")
    segments = tuple(sub.split("/")) if "=" in inner else ("*",)  # `{x=}` is an empty pattern
    for seg in segments:
        _check_segment(seg, source)
    return Variable(field_path, segments, group)


def _check_segment(seg: str, source: str) -> None:
    if seg not in ("*", "**") and not _LITERAL.match(seg):
        raise TemplateError(f"{source!r}: bad segment {seg!r}")


def _segment_regex(seg: str | Variable) -> str:
    if isinstance(seg, Variable):
        inner = "/".join(_wild(s) for s in seg.segments)
        return f"(?P<{seg.group}>{inner})"
    return _wild(seg)


def _wild(seg: str) -> str:
    if seg == "*":
        return "[^/]+"
    if seg == "**":
        return ".+"
    return re.escape(seg)


def _decode_multi(raw: str) -> str:
    """Percent-decodes each segment but keeps an encoded '/' encoded (http.proto rule)."""
    return "/".join(unquote(part).replace("/", "%2F") for part in raw.split("/"))
