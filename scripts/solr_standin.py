#!/usr/bin/env python3
"""Solr stand-in: TEST INFRASTRUCTURE ONLY, not a search engine for production.

Apache Solr cannot be installed on the development/CI machines (it is in neither Debian nor
PyPI), yet CKAN 2.12 refuses to index datasets without a Solr core at ``solr_url``. This small
stdlib-only HTTP server answers the requests CKAN makes through pysolr, so that a local CKAN
runs its normal indexing and search code paths unmodified:

* ``GET/POST <core>/select``  -- Lucene-subset query (``q``/``fq``), dismax over ``qf`` with
  ``mm``, ``fl``, ``sort``, ``start``/``rows`` and field facets; JSON response (``wt=json``).
* ``POST <core>/update``      -- JSON list of documents (pysolr ``add``), XML ``<add>``,
  ``<delete><id>|<query>``, ``<commit/>``, ``<optimize/>``.
* ``GET <core>/schema`` and ``<core>/admin/file`` -- a schema document naming ``ckan-2.12``
  so CKAN's version check passes.
* ``GET <core>/admin/ping``   -- ``{"status": "OK"}``.

Guarantees (and limits): documents are keyed by ``index_id`` (else ``id``), kept in memory and
written atomically to a JSON file on every update, so the index survives restarts. Matching
follows CKAN's ``schema.xml`` in spirit: string fields match exactly (case-sensitive), text fields
match lowercase ``\\w+`` tokens, ``text`` is a catch-all. There is no stemming and no real
relevance ranking: tests must assert on exact names, ids or filters, never on ranking.
Production deployments use real Solr (see CKAN's documentation); nothing in the publisher talks
to this server directly.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fnmatch
import json
import os
import re
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SCHEMA_XML = '<?xml version="1.0" encoding="UTF-8"?>\n<schema name="ckan-2.12" version="1.6"/>\n'

TEXT_FIELDS = {
    "text", "title", "notes", "res_name", "res_description", "author", "maintainer", "urls",
    "license", "title_ngram", "ckan_url", "download_url",
}
TEXT_PREFIXES = ("extras_", "res_extras_")
CATCH_ALL_SOURCES = {
    "urls", "name", "title", "text", "license", "notes", "tags", "groups", "organization",
    "res_name", "res_description", "maintainer", "author",
}
CATCH_ALL_PREFIXES = ("extras_", "res_extras_", "vocab_")
TOKEN_RE = re.compile(r"\w+", re.UNICODE)


class QueryError(ValueError):
    """A query the stand-in cannot parse (answered with HTTP 400, like Solr)."""


# --------------------------------------------------------------------------- field semantics
def is_text_field(field: str) -> bool:
    return field in TEXT_FIELDS or field.startswith(TEXT_PREFIXES)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def scalar_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def field_values(doc: dict[str, Any], field: str) -> list[str]:
    """The string values of ``field`` in ``doc``; ``text`` gathers the copyField sources."""
    if field == "text":
        out: list[str] = []
        for key, value in doc.items():
            if key == "text" or key in CATCH_ALL_SOURCES or key.startswith(CATCH_ALL_PREFIXES):
                out.extend(scalar_str(v) for v in as_list(value) if v is not None)
        return out
    return [scalar_str(v) for v in as_list(doc.get(field)) if v is not None]


def tokens(text: str) -> list[str]:
    return [t.lower() for t in TOKEN_RE.findall(text)]


# --------------------------------------------------------------------------- dates
NOW_RE = re.compile(r"^NOW((?:[+-]\d+[A-Z]+|/[A-Z]+)*)$")
UNITS = {
    "SECOND": 1, "SECONDS": 1, "MINUTE": 60, "MINUTES": 60, "HOUR": 3600, "HOURS": 3600,
    "DAY": 86400, "DAYS": 86400, "WEEK": 604800, "WEEKS": 604800,
    "MONTH": 2592000, "MONTHS": 2592000, "YEAR": 31536000, "YEARS": 31536000,
}


def resolve_date(text: str) -> str:
    """Turn ``NOW-1DAY``-style date math into an ISO string (``Z``); other text unchanged."""
    m = NOW_RE.match(text)
    if not m:
        return text
    t = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for op in re.findall(r"[+-]\d+[A-Z]+|/[A-Z]+", m.group(1)):
        if op.startswith("/"):
            unit = op[1:].rstrip("S")
            if unit == "DAY":
                t = t.replace(hour=0, minute=0, second=0, microsecond=0)
            elif unit == "HOUR":
                t = t.replace(minute=0, second=0, microsecond=0)
            continue
        num, unit = re.match(r"([+-]\d+)([A-Z]+)", op).groups()  # type: ignore[union-attr]
        if unit not in UNITS:
            raise QueryError(f"unknown date unit {unit}")
        t += dt.timedelta(seconds=int(num) * UNITS[unit])
    return t.isoformat() + "Z"


def compare_key(text: str) -> tuple[int, Any]:
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


# --------------------------------------------------------------------------- query parsing
class Node:
    def match(self, doc: dict[str, Any]) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


class MatchAll(Node):
    def match(self, doc: dict[str, Any]) -> bool:
        return True


class Term(Node):
    def __init__(self, field: str, text: str, phrase: bool = False) -> None:
        self.field, self.text, self.phrase = field, text, phrase

    def match(self, doc: dict[str, Any]) -> bool:
        values = field_values(doc, self.field)
        if self.text == "*" and not self.phrase:
            return any(v != "" for v in values)
        wildcard = not self.phrase and any(c in self.text for c in "*?")
        if is_text_field(self.field):
            if wildcard:
                pattern = self.text.lower()
                return any(fnmatch.fnmatchcase(tok, pattern) for v in values for tok in tokens(v))
            wanted = tokens(self.text)
            if not wanted:
                return False
            for v in values:
                have = tokens(v)
                n = len(wanted)
                if any(have[i : i + n] == wanted for i in range(len(have) - n + 1)):
                    return True
            return False
        if wildcard:
            return any(fnmatch.fnmatchcase(v, self.text) for v in values)
        return self.text in values


class Range(Node):
    def __init__(self, field: str, lo: str, hi: str, incl_lo: bool, incl_hi: bool) -> None:
        self.field = field
        self.lo = None if lo == "*" else compare_key(resolve_date(lo))
        self.hi = None if hi == "*" else compare_key(resolve_date(hi))
        self.incl_lo, self.incl_hi = incl_lo, incl_hi

    def match(self, doc: dict[str, Any]) -> bool:
        for v in field_values(doc, self.field):
            key = compare_key(v)
            if self.lo is not None and (key < self.lo or (key == self.lo and not self.incl_lo)):
                continue
            if self.hi is not None and (key > self.hi or (key == self.hi and not self.incl_hi)):
                continue
            return True
        return False


MUST, SHOULD, MUST_NOT = "must", "should", "must_not"


class Boolean(Node):
    def __init__(self, clauses: list[tuple[str, Node]]) -> None:
        self.clauses = clauses

    def match(self, doc: dict[str, Any]) -> bool:
        musts = [n for o, n in self.clauses if o == MUST]
        shoulds = [n for o, n in self.clauses if o == SHOULD]
        nots = [n for o, n in self.clauses if o == MUST_NOT]
        if any(n.match(doc) for n in nots):
            return False
        if not all(n.match(doc) for n in musts):
            return False
        if musts or not shoulds:
            return True
        return any(n.match(doc) for n in shoulds)

    def score(self, doc: dict[str, Any]) -> float:
        return float(sum(1 for o, n in self.clauses if o != MUST_NOT and n.match(doc)))


TOKEN_SPEC = re.compile(
    r'\s+|(?P<lp>\()|(?P<rp>\))|(?P<phrase>"(?:\\.|[^"\\])*")'
    r'|(?P<range>[\[{](?:\\.|[^\]}])*[\]}])|(?P<op>&&|\|\|)|(?P<word>(?:\\.|[^\s()"\[\]{}])+)'
)


def lex(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = TOKEN_SPEC.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"cannot parse query at position {pos}: {text[pos:pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind is None:
            continue
        out.append((kind, m.group(kind)))
    return out


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


class Parser:
    """Lucene standard query parser subset with Lucene's AND/OR/+/- clause semantics."""

    def __init__(self, text: str, default_field: str, default_op: str) -> None:
        text = text.strip()
        if text.startswith("{!"):
            end = text.find("}")
            text = text[end + 1 :] if end >= 0 else ""
        self.toks = lex(text)
        self.i = 0
        self.default_field = default_field
        self.default_and = default_op.upper() == "AND"

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse(self) -> Node:
        node = self.query(self.default_field)
        if self.peek() is not None:
            raise QueryError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def query(self, field: str) -> Node:
        clauses: list[list[Any]] = []  # [occur, node]
        conj: str | None = None
        while True:
            tok = self.peek()
            if tok is None or tok[0] == "rp":
                break
            kind, val = tok
            if (kind == "word" and val in ("AND", "OR")) or kind == "op":
                conj = "AND" if val in ("AND", "&&") else "OR"
                self.i += 1
                continue
            mods = None
            if kind == "word" and val == "NOT":
                mods = "NOT"
                self.i += 1
            elif kind == "word" and val in ("+", "-", "!"):
                mods = "REQ" if val == "+" else "NOT"
                self.i += 1
            elif kind == "word" and val[0] in "+-!" and len(val) > 1:
                mods = "REQ" if val[0] == "+" else "NOT"
                self.toks[self.i] = ("word", val[1:])
            node = self.clause(field)
            if clauses and conj == "AND" and clauses[-1][0] != MUST_NOT:
                clauses[-1][0] = MUST
            if clauses and self.default_and and conj == "OR" and clauses[-1][0] != MUST_NOT:
                clauses[-1][0] = SHOULD
            if mods == "NOT":
                occur = MUST_NOT
            elif mods == "REQ":
                occur = MUST
            elif self.default_and:
                occur = SHOULD if conj == "OR" else MUST
            else:
                occur = MUST if conj == "AND" else SHOULD
            clauses.append([occur, node])
            conj = None
        if len(clauses) == 1 and clauses[0][0] != MUST_NOT:
            return clauses[0][1]
        if clauses and all(o == MUST_NOT for o, _ in clauses):
            clauses.insert(0, [MUST, MatchAll()])
        return Boolean([(o, n) for o, n in clauses])

    def clause(self, field: str) -> Node:
        tok = self.peek()
        if tok is None:
            raise QueryError("query ends after an operator")
        kind, val = tok
        if kind == "lp":
            self.i += 1
            node = self.query(field)
            if self.peek() is None or self.peek()[0] != "rp":  # type: ignore[index]
                raise QueryError("missing closing parenthesis")
            self.i += 1
            return node
        if kind == "phrase":
            self.i += 1
            return Term(field, unescape(val[1:-1]), phrase=True)
        if kind == "range":
            self.i += 1
            return self.range_node(field, val)
        if kind != "word":
            raise QueryError(f"unexpected {val!r}")
        self.i += 1
        m = re.match(r"^((?:\\.|[^:\\])+):(.*)$", val)
        if m:
            fname, rest = unescape(m.group(1)), m.group(2)
            if fname == "*" and rest == "*":
                return MatchAll()
            if rest == "":
                return self.clause(fname)
            return Term(fname, unescape(rest))
        return Term(field, unescape(val))

    @staticmethod
    def range_node(field: str, val: str) -> Node:
        inner = val[1:-1]
        parts = re.split(r"\s+TO\s+", inner.strip())
        if len(parts) != 2:
            raise QueryError(f"bad range {val!r}")
        lo, hi = (unescape(p.strip().strip('"')) for p in parts)
        return Range(field, lo, hi, val[0] == "[", val[-1] == "]")


def min_should_match(spec: str, n: int) -> int:
    """Solr ``mm`` (e.g. ``2<-1 5<80%``) for ``n`` optional clauses."""
    spec = spec.strip()
    if not spec:
        return n

    def one(expr: str) -> int:
        if expr.endswith("%"):
            pct = int(expr[:-1])
            k = int(n * abs(pct) / 100)
            return n - k if pct < 0 else k
        k = int(expr)
        return n + k if k < 0 else k

    if "<" not in spec:
        return max(0, min(n, one(spec)))
    result = n
    for part in spec.split():
        limit, expr = part.split("<", 1)
        if n > int(limit):
            result = one(expr)
    return max(0, min(n, result))


def dismax_node(q: str, qf: str, mm: str) -> Node:
    fields = [f.split("^")[0] for f in qf.split()] or ["text"]
    words = [
        (m.group(1) if m.group(1) is not None else m.group(2), m.group(1) is not None)
        for m in re.finditer(r'"([^"]*)"|(\S+)', q)
    ]
    words = [(w, p) for w, p in words if w not in ("AND", "OR", "+", "-")]
    per_word: list[Node] = [
        Boolean([(SHOULD, Term(f, w.lstrip("+"), phrase=p)) for f in fields]) for w, p in words
    ]
    need = min_should_match(mm, len(per_word))

    class DisMax(Node):
        def match(self, doc: dict[str, Any]) -> bool:
            return sum(1 for n in per_word if n.match(doc)) >= need

        def score(self, doc: dict[str, Any]) -> float:
            return float(sum(1 for n in per_word if n.match(doc)))

    return DisMax()


# --------------------------------------------------------------------------- the core
class Core:
    """Documents keyed by ``index_id``; persisted to ``path`` after every update."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.docs: dict[str, dict[str, Any]] = {}
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                self.docs = json.load(fh)

    def save(self) -> None:
        if not self.path:
            return
        tmp = f"{self.path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.docs, fh, ensure_ascii=False)
        os.replace(tmp, self.path)

    @staticmethod
    def key(doc: dict[str, Any]) -> str:
        key = doc.get("index_id", doc.get("id"))
        if key is None:
            raise QueryError("document without index_id or id")
        return str(key)

    def add(self, docs: list[dict[str, Any]]) -> None:
        with self.lock:
            for doc in docs:
                self.docs[self.key(doc)] = doc
            self.save()

    def delete_ids(self, ids: list[str]) -> None:
        with self.lock:
            for k in list(self.docs):
                if k in ids or str(self.docs[k].get("id")) in ids:
                    del self.docs[k]
            self.save()

    def delete_query(self, q: str) -> None:
        node = Parser(q, "text", "OR").parse()
        with self.lock:
            for k in [k for k, d in self.docs.items() if node.match(d)]:
                del self.docs[k]
            self.save()

    def select(self, params: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str, default: str = "") -> str:
            return params.get(name, [default])[-1]

        q = one("q", "*:*") or "*:*"
        def_type = one("defType", "lucene")
        if def_type in ("dismax", "edismax") and ":" not in q:
            qnode: Node = dismax_node(q, one("qf", "text"), one("mm", ""))
        else:
            qnode = Parser(q, one("df", "text"), one("q.op", "OR")).parse()
        # like Solr, q.op (CKAN sends AND) is the default operator of the filter queries too
        fqs = [Parser(fq, one("df", "text"), one("q.op", "OR")).parse()
               for fq in params.get("fq", []) if fq]
        with self.lock:
            docs = list(self.docs.values())
        hits = [d for d in docs if qnode.match(d) and all(f.match(d) for f in fqs)]
        scores = {id(d): (qnode.score(d) if hasattr(qnode, "score") else 1.0) for d in hits}
        hits = self.sort(hits, one("sort", "score desc"), scores)
        start, rows = int(one("start", "0") or 0), int(one("rows", "10") or 10)
        page = hits[start : start + rows] if rows >= 0 else hits[start:]
        out = {
            "responseHeader": {"status": 0, "QTime": 0},
            "response": {
                "numFound": len(hits),
                "start": start,
                "docs": [self.project(d, one("fl", "*"), scores[id(d)]) for d in page],
            },
        }
        if one("facet", "false").lower() == "true":
            out["facet_counts"] = {
                "facet_queries": {},
                "facet_fields": self.facets(hits, params),
                "facet_ranges": {},
                "facet_intervals": {},
                "facet_heatmaps": {},
            }
        return out

    @staticmethod
    def sort(hits: list[dict[str, Any]], spec: str, scores: dict[int, float]) -> list[dict]:
        keys: list[tuple[str, bool]] = []
        for part in [p.strip() for p in spec.split(",") if p.strip()]:
            bits = part.split()
            if len(bits) != 2 or bits[1].lower() not in ("asc", "desc"):
                raise QueryError(f"Can't determine a Sort Order (asc or desc) in sort spec '{part}'")
            keys.append((bits[0], bits[1].lower() == "desc"))
        for field, desc in reversed(keys):
            if field == "score":
                hits.sort(key=lambda d: scores[id(d)], reverse=desc)
                continue
            present = [d for d in hits if field_values(d, field)]
            missing = [d for d in hits if not field_values(d, field)]
            present.sort(key=lambda d, f=field: compare_key(field_values(d, f)[0]), reverse=desc)
            hits = present + missing
        return hits

    @staticmethod
    def project(doc: dict[str, Any], fl: str, score: float) -> dict[str, Any]:
        fields = [f for f in re.split(r"[\s,]+", fl) if f]
        out = dict(doc) if not fields or "*" in fields else {f: doc[f] for f in fields if f in doc}
        if "score" in fields:
            out["score"] = score
        return out

    @staticmethod
    def facets(hits: list[dict[str, Any]], params: dict[str, list[str]]) -> dict[str, list]:
        out: dict[str, list] = {}
        for field in params.get("facet.field", []):
            def opt(name: str, default: str, field: str = field) -> str:
                per = params.get(f"f.{field}.facet.{name}")
                return (per or params.get(f"facet.{name}") or [default])[-1]

            limit, mincount = int(opt("limit", "100")), int(opt("mincount", "0"))
            counts: dict[str, int] = {}
            for d in hits:
                for v in set(field_values(d, field)):
                    counts[v] = counts.get(v, 0) + 1
            pairs = sorted(
                ((v, c) for v, c in counts.items() if c >= mincount), key=lambda p: (-p[1], p[0])
            )
            if limit >= 0:
                pairs = pairs[:limit]
            out[field] = [x for p in pairs for x in p]
        return out

    def update(self, body: bytes, content_type: str) -> None:
        text = body.decode("utf-8")
        stripped = text.lstrip()
        if not stripped:
            return
        if "json" in content_type or stripped[0] in "[{":
            payload = json.loads(text)
            if isinstance(payload, list):
                self.add(payload)
                return
            if isinstance(payload, dict):
                if "add" in payload:
                    add = payload["add"]
                    docs = [a.get("doc", a) for a in as_list(add)]
                    self.add(docs)
                if "delete" in payload:
                    for item in as_list(payload["delete"]):
                        if isinstance(item, dict) and "query" in item:
                            self.delete_query(item["query"])
                        elif isinstance(item, dict) and "id" in item:
                            self.delete_ids([str(item["id"])])
                        else:
                            self.delete_ids([str(item)])
                return
            raise QueryError("unsupported JSON update")
        root = ET.fromstring(text)
        if root.tag == "add":
            docs = []
            for el in root.findall("doc"):
                doc: dict[str, Any] = {}
                for f in el.findall("field"):
                    name = f.get("name", "")
                    if name in doc:
                        doc[name] = as_list(doc[name]) + [f.text or ""]
                    else:
                        doc[name] = f.text or ""
                docs.append(doc)
            self.add(docs)
        elif root.tag == "delete":
            ids = [e.text or "" for e in root.findall("id")]
            if ids:
                self.delete_ids(ids)
            for qel in root.findall("query"):
                self.delete_query(qel.text or "*:*")
        elif root.tag in ("commit", "optimize", "rollback"):
            return
        else:
            raise QueryError(f"unsupported update message <{root.tag}>")


# --------------------------------------------------------------------------- HTTP
class Handler(BaseHTTPRequestHandler):
    server_version = "SolrStandin/1"
    core: Core

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if os.environ.get("SOLR_STANDIN_VERBOSE"):
            super().log_message(format, *args)

    def send(self, status: int, body: str | bytes, ctype: str = "application/json") -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, msg: str) -> None:
        body = {"responseHeader": {"status": status}, "error": {"msg": msg, "code": status}}
        self.send(status, json.dumps(body))

    def route(self, method: str) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        body = b""
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
        ctype = self.headers.get("Content-Type", "")
        if method == "POST" and "x-www-form-urlencoded" in ctype:
            for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                params.setdefault(k, []).extend(v)
            body = b""
        path = url.path.rstrip("/")
        try:
            if path.endswith("/select"):
                self.send(200, json.dumps(self.core.select(params), ensure_ascii=False))
            elif path.endswith("/update") and method == "POST":
                self.core.update(body, ctype)
                self.send(200, json.dumps({"responseHeader": {"status": 0, "QTime": 0}}))
            elif path.endswith("/schema") or path.endswith("/admin/file"):
                self.send(200, SCHEMA_XML, "application/xml")
            elif path.endswith("/admin/ping"):
                self.send(200, json.dumps({"responseHeader": {"status": 0}, "status": "OK"}))
            else:
                self.error(404, f"no handler for {url.path}")
        except (QueryError, ET.ParseError, json.JSONDecodeError, ValueError) as exc:
            self.error(400, str(exc))

    def do_GET(self) -> None:  # noqa: N802
        self.route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.route("POST")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=58983)
    ap.add_argument("--data", help="JSON file holding the index (created if missing)")
    args = ap.parse_args(argv)
    Handler.core = Core(args.data)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"solr stand-in (test infrastructure) on http://{args.host}:{args.port}", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
