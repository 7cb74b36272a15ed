"""Every result the code cites resolves to a heading of docs/theory.md.

The code cites the theory by ID (``R-LR-1``, ``Lemma 3.1``, ``Theorem 3.9``, ``Definition 3.2``,
``eq. (5)``, ``Figure 3``, claim ``C7``) and by section number (``THEORY.md section 6``,
``THEORY.md 4.2``, ``THEORY.md 3.1.0, 4.0, section 5``). ``THEORY.md`` was the working
specification outside the repository; ``docs/theory.md`` keeps its numbering, so both spellings
(and the bare ``THEORY 4.2``) are read as references to docs/theory.md. A citation resolves when
docs/theory.md has a heading that contains its ID, or, for a section reference, a heading numbered
``N`` or ``N.M``; a quoted heading name (``docs/theory.md, "Statistical design"``) must appear in a
heading, and a link ``theory.md#anchor`` must match a heading's GitHub anchor.

Scanned: ``theory/``, ``simulate/``, ``compare/`` (templates included), ``tests/``, ``benchmarks/``,
``README.md`` and ``docs/*.md`` other than theory.md. Registered claim ids (``@claim("C7", ...)``
in ``compare/``) count as citations of their entry in section 6. A ``paper_ref`` value names the
paper's own numbering (tests use invented ones such as ``"Fig. 9"``), so it is not a citation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "theory.md"
SCAN_DIRS = ("theory", "simulate", "compare", "tests", "benchmarks")
SUFFIXES = {".py", ".md", ".html", ".txt", ".rst"}

# ----------------------------------------------------------------------------- patterns
#: named results: (pattern, normaliser). The normalised key is how a heading must spell the ID.
_ID_PATTERNS: tuple[tuple[re.Pattern, object], ...] = (
    (re.compile(r"\bR-LR-(\d+)\b"), lambda m: f"R-LR-{m[1]}"),
    (re.compile(r"\b(Lemma|Theorem|Definition|Proposition|Corollary|Remark)\s+(\d+\.\d+)\b"),
     lambda m: f"{m[1]} {m[2]}"),
    (re.compile(r"\bThm\.?\s*(\d+\.\d+)\b"), lambda m: f"Theorem {m[1]}"),
    (re.compile(r"\bDef\.\s*(\d+\.\d+)\b"), lambda m: f"Definition {m[1]}"),
    (re.compile(r"\b[Ee]q(?:uation|n)?\.?\s*\((\d+)\)"), lambda m: f"eq. ({m[1]})"),
    (re.compile(r"\b[Ee]q\.\s*(\d+)\b"), lambda m: f"eq. ({m[1]})"),
    (re.compile(r"\bFig(?:ure|\.)\s*(\d+)\b"), lambda m: f"Figure {m[1]}"),
)
#: the document, under either spelling (``THEORY`` alone too, but not ``THEORY_X`` or a possessive).
_DOC = r"(?:docs/theory\.md|\bTHEORY(?:\.md)?\b)(?!'s)"
#: a section number (not the start of "4-digit" or "3rd") or a claim id.
_NUM = r"\d+(?:\.\d+)*(?![\w.]*[A-Za-z_]|-[A-Za-z])"
_ITEM = rf"(?:(?:sections?|§)\s*)?(?:{_NUM}|C\d+\b)"
_SEP = r"(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*[-–/]\s*)"
_GAP = r"(?:[ \t]+|[ \t]*\n[ \t#]*)"  # a space, or one line break (with a comment marker)
_LIST = re.compile(rf"{_DOC},?{_GAP}(?P<list>{_ITEM}(?:{_SEP}{_ITEM})*)")
_LIST_ITEM = re.compile(rf"(?:sections?|§)?\s*(?P<key>{_NUM}|C\d+\b)")
_QUOTED = re.compile(rf"{_DOC},?\s*\"(?P<name>[^\"\n]+)\"")
_ANCHOR = re.compile(r"theory\.md#(?P<anchor>[A-Za-z0-9_\-]+)")
_THEORY_REF = re.compile(r"theory_ref\s*=\s*\"(?P<ref>[^\"]*)\"")
_REF_SECTION = re.compile(rf"(?:\bSec\.|\b[Ss]ections?)\s*(?P<key>{_NUM})")
_REGISTER = re.compile(r"\b(?:register|claim)\(\s*\"(?P<id>C\d+)\"")
#: a paper reference (``paper_ref="Fig. 9"``) names the paper's numbering, not this document's.
#: a numbered result of another text (e.g. "Higham 2002 Thm 10.4"): not a citation of docs/theory.md.
_EXTERNAL = re.compile(r"(Higham|Golub|Stewart|Bhatia|Wedin|Kato)\b[^\n]*$")
_PAPER_REF = re.compile(r"paper_ref[\"']?\s*[=:]\s*([\"'])(?P<ref>.*?)\1")
_CLAIM = re.compile(r"\bC\d+\b")


@dataclass(frozen=True)
class Citation:
    """One reference to docs/theory.md: ``kind`` is ``id``, ``section``, ``heading`` or ``anchor``."""

    kind: str
    key: str
    path: str
    line: int
    text: str

    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} {self.key!r} in {self.text.strip()!r}"


# ----------------------------------------------------------------------------- collecting
def scanned_files(root: Path = ROOT) -> list[Path]:
    """The files whose citations must resolve (this test and docs/theory.md excluded)."""
    files = [root / "README.md"] if (root / "README.md").exists() else []
    files += sorted(p for p in (root / "docs").glob("*.md") if p.name != "theory.md")
    for d in SCAN_DIRS:
        files += sorted(p for p in (root / d).rglob("*") if p.is_file() and p.suffix in SUFFIXES
                        and "__pycache__" not in p.parts)
    this = Path(__file__).relative_to(Path(__file__).parents[1]).as_posix()  # tests/test_theory_doc.py
    return [p for p in files if p.relative_to(root).as_posix() != this]


def _line_of(text: str, pos: int) -> tuple[int, str]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text.count("\n", 0, pos) + 1, text[start:end if end >= 0 else len(text)]


def citations_in(text: str, path: str = "<text>", *, registry: bool = False) -> list[Citation]:
    """Every citation of docs/theory.md in ``text``.

    registry: also count ``@claim("C7", ...)`` as a citation of claim C7 (for compare/).
    """
    out: list[Citation] = []

    def add(kind: str, key: str, pos: int) -> None:
        line, src = _line_of(text, pos)
        out.append(Citation(kind, key, path, line, src))

    paper = [m.span("ref") for m in _PAPER_REF.finditer(text)]
    for pat, norm in _ID_PATTERNS:
        for m in pat.finditer(text):
            if any(a <= m.start() < b for a, b in paper) or _EXTERNAL.search(text[max(0, m.start() - 24):m.start()]):
                continue
            add("id", norm(m), m.start())
    for m in _LIST.finditer(text):
        for it in _LIST_ITEM.finditer(m["list"]):
            key = it["key"]
            add("id" if key.startswith("C") else "section", key, m.start())
    for m in _QUOTED.finditer(text):
        add("heading", m["name"], m.start())
    for m in _ANCHOR.finditer(text):
        add("anchor", m["anchor"], m.start())
    for m in _THEORY_REF.finditer(text):
        for s in _REF_SECTION.finditer(m["ref"]):
            add("section", s["key"], m.start())
    if registry:
        for m in _REGISTER.finditer(text):
            add("id", m["id"], m.start())
    return out


def collect(root: Path = ROOT) -> list[Citation]:
    """Citations in every scanned file."""
    out: list[Citation] = []
    for p in scanned_files(root):
        rel = p.relative_to(root).as_posix()
        text = p.read_text(encoding="utf-8", errors="replace")
        out += citations_in(text, rel, registry=rel.startswith("compare/"))
    return out


# ----------------------------------------------------------------------------- the document
@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    number: str | None
    ids: frozenset
    anchor: str


def _slug(text: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return s.replace(" ", "-")


def headings(doc: Path = DOC) -> list[Heading]:
    """The headings of ``doc`` (outside code fences), with their number, IDs and anchor."""
    out: list[Heading] = []
    seen: dict[str, int] = {}
    fence = False
    for raw in doc.read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("```"):
            fence = not fence
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", raw)
        if fence or not m:
            continue
        text = m[2]
        num = re.match(r"(\d+(?:\.\d+)*)\.?(?:\s|$)", text)
        ids = {norm(x) for pat, norm in _ID_PATTERNS for x in pat.finditer(text)}
        ids |= set(_CLAIM.findall(text))
        base = _slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(Heading(len(m[1]), text, num[1] if num else None, frozenset(ids),
                           base if n == 0 else f"{base}-{n}"))
    return out


def unresolved(cites: list[Citation], heads: list[Heading]) -> list[Citation]:
    """The citations with no matching heading."""
    numbers = {h.number for h in heads if h.number}
    ids = set().union(*(h.ids for h in heads)) if heads else set()
    texts = [h.text.lower() for h in heads]
    anchors = {h.anchor for h in heads}
    bad = []
    for c in cites:
        ok = {"section": lambda: c.key in numbers,
              "id": lambda: c.key in ids,
              "heading": lambda: any(c.key.lower() in t for t in texts),
              "anchor": lambda: c.key in anchors}[c.kind]()
        if not ok:
            bad.append(c)
    return bad


# ----------------------------------------------------------------------------- tests
def test_every_cited_result_resolves_to_a_heading():
    cites = collect()
    bad = unresolved(cites, headings())
    report = "\n".join(c.where() for c in bad)
    if bad:
        print(report)
    assert not bad, f"{len(bad)} of {len(cites)} citations have no heading in docs/theory.md:\n{report}"


def test_the_collector_sees_the_code_citations():
    cites = collect()
    keys = {(c.kind, c.key) for c in cites}
    # results the code is known to cite, under both kinds of reference
    for want in [("id", "R-LR-1"), ("id", "R-LR-2"), ("id", "R-LR-3"), ("id", "Lemma 3.1"),
                 ("id", "Definition 3.2"), ("id", "Theorem 3.9"), ("id", "eq. (5)"),
                 ("section", "6"), ("section", "4.2"), ("section", "3.1.0"), ("id", "C1"), ("id", "C20")]:
        assert want in keys, f"expected the citation {want} somewhere in the code; collected {len(cites)}"
    sections = [c for c in cites if c.kind == "section"]
    assert len(cites) >= 200 and len(sections) >= 40, \
        f"only {len(cites)} citations ({len(sections)} section references) collected: the patterns lost some"


def test_both_spellings_and_every_list_form_are_parsed():
    text = "\n".join([
        "a (THEORY.md section 6) b",
        "a (docs/theory.md section 6) b",
        "THEORY.md sections 2 and 3.1",
        "docs/theory.md 3.1.0, 4.0, section 5",
        "(THEORY.md 4.0-4.1, C13).",
        "docs/theory.md 3.1, 5, 6",
        "THEORY 4.2's relu",
        "# THEORY.md C11: the bulk",
        "THEORY.md's 4-digit values and THEORY.md's factors",
        "THEORY.md, Theorem 3.9 limits; Thm 3.9; Def. 3.2; Eq. (5); eq. 5; Fig. 4",
        'docs/theory.md, "Statistical design"',
        "[x](docs/theory.md#r-lr-1--local-contraction)",
        'theory_ref="Sec. 2 (Gauss-Newton / Hessian)"',
    ])
    got = [(c.kind, c.key, c.line) for c in citations_in(text)]
    want = [("section", "6", 1), ("section", "6", 2), ("section", "2", 3), ("section", "3.1", 3),
            ("section", "3.1.0", 4), ("section", "4.0", 4), ("section", "5", 4), ("section", "4.0", 5),
            ("section", "4.1", 5), ("id", "C13", 5), ("section", "3.1", 6), ("section", "5", 6),
            ("section", "6", 6), ("section", "4.2", 7), ("id", "C11", 8),
            ("id", "Theorem 3.9", 10), ("id", "Theorem 3.9", 10), ("id", "Definition 3.2", 10),
            ("id", "eq. (5)", 10), ("id", "eq. (5)", 10), ("id", "Figure 4", 10),
            ("heading", "Statistical design", 11), ("anchor", "r-lr-1--local-contraction", 12),
            ("section", "2", 13)]
    assert sorted(got) == sorted(want), f"parsed {sorted(got)}\nexpected {sorted(want)}"
    assert citations_in('@claim(\n    "C7", paper_ref="x")', registry=True)[0].key == "C7"
    # a paper reference is the paper's numbering, not a citation of this document
    got = [(c.kind, c.key) for c in citations_in('paper_ref="Fig. 9", theory_ref="R-LR-1"')]
    assert got == [("id", "R-LR-1")], got


def test_a_citation_with_no_heading_is_reported_with_its_place():
    text = "see R-LR-9, Lemma 9.9 and THEORY.md 8.1; docs/theory.md C99; docs/theory.md#no-such-anchor"
    bad = unresolved(citations_in(text, "fake.py"), headings())
    assert sorted(c.key for c in bad) == ["8.1", "C99", "Lemma 9.9", "R-LR-9", "no-such-anchor"], \
        [c.where() for c in bad]
    assert bad[0].where().startswith("fake.py:1: ")


def test_the_document_carries_every_result_and_section():
    heads = headings()
    numbers = {h.number for h in heads if h.number}
    ids = set().union(*(h.ids for h in heads))
    need_numbers = {str(i) for i in range(8)} | {"3.1", "3.1.0", "4.0", "4.1", "4.2"}
    need_ids = ({"R-LR-1", "R-LR-2", "R-LR-3", "Lemma 3.1", "Definition 3.2", "Theorem 3.9", "eq. (5)",
                 "eq. (8)"} | {f"C{i}" for i in range(1, 26)} | {f"Figure {i}" for i in range(1, 7)})
    assert need_numbers <= numbers, f"missing numbered headings: {sorted(need_numbers - numbers)}"
    assert need_ids <= ids, f"missing result headings: {sorted(need_ids - ids)}"
    texts = " | ".join(h.text for h in heads)
    for name in ("Statistical design", "Algorithm catalogue", "population-preconditioner variant"):
        assert name.lower() in texts.lower(), f"no heading named {name!r}"
    # the section numbers are those of the original specification, in order
    top = [h.number for h in heads if h.level == 2 and h.number]
    assert top == [str(i) for i in range(8)], f"top-level sections are numbered {top}, expected 0-7"
