"""``documentation``: README with the required sections, API docs, deployment guide, runbooks.

Everything is read on the host by the probe: the README's text (headings are
matched here) and a ``stat`` of every accepted location of each document.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import unreadable

DEFAULTS: dict[str, Any] = {
    "readme_file": "README.md",
    "readme_sections": ["Installation", "Usage", "Configuration"],
    # Documents under docs_dir; each lists the accepted locations, the first is recommended.
    # An OpenAPI document is API documentation (FastAPI and most HTTP services ship one);
    # reStructuredText is how Sphinx-documented Python projects write theirs.
    "api_docs": [
        "API.md",
        "api.md",
        "api/README.md",
        "api/index.md",
        "API.rst",
        "api.rst",
        "api/index.rst",
        "openapi.yaml",
        "openapi.yml",
        "openapi.json",
        "api/openapi.yaml",
        "api/openapi.json",
    ],
    "deployment_guide": [
        "DEPLOYMENT.md",
        "deployment.md",
        "deploy/README.md",
        "DEPLOYMENT.rst",
        "deployment.rst",
    ],
    # Runbook name → accepted locations under docs_dir (an empty list: not required).
    "runbooks": {
        "incident-response": ["runbooks/incident-response.md", "runbooks/incident_response.md"],
        "escalation": ["runbooks/escalation.md"],
        "rollback": ["runbooks/rollback.md"],
    },
}

README_FACT = "documentation:readme"
_README_MAX_BYTES = 1024 * 1024
_DOC_HEAD_BYTES = 4096  # enough to tell a blank document from a written one
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^\s{0,3}#{1,6}(?:\s+(.*?))?\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
# A list item or block quote is no paragraph: a `---` under one is a thematic break, so a
# table of contents ("- [Configuration](#configuration)") above a rule is no heading.
_NOT_PARAGRAPH = re.compile(r"^ {0,3}(?:[-+*]|\d{1,9}[.)])(?:\s|$)|^ {0,3}>")
# An HTML comment block (CommonMark HTML block, type 2) ends on the line holding "-->": a
# section commented out of a template ("<!-- ## Configuration -->") is no section.
_COMMENT_START = re.compile(r"^ {0,3}<!--")
# An HTML heading on its own line is one, as GitHub renders it ("<h2>Usage</h2>").
_HTML_HEADING = re.compile(r"^ {0,3}<h([1-6])(?:\s[^>]*)?>(.*?)</h\1>\s*$", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def _alternatives(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value if v]


def _documents(profile: Profile) -> list[tuple[str, str, list[str]]]:
    """(kind, label, accepted relative paths) for every required document."""
    out = [
        ("api_docs", "API documentation", _alternatives(profile.get("api_docs"))),
        ("deployment_guide", "deployment guide", _alternatives(profile.get("deployment_guide"))),
    ]
    runbooks: Mapping[str, Any] = profile.get("runbooks") or {}
    for name, paths in runbooks.items():
        out.append((f"runbooks.{name}", f"{name} runbook", _alternatives(paths)))
    return [d for d in out if d[2]]


def _doc_path(profile: Profile, rel: str) -> str:
    """A document path as configured: relative paths live under ``docs_dir``."""
    if posixpath.isabs(rel) or rel.startswith("~"):
        return rel
    return posixpath.join(str(profile.get("docs_dir") or "."), rel)


def _fact_key(kind: str, index: int) -> str:
    return f"documentation:{kind}:{index}"


def facts(profile: Profile) -> FactSpecs:
    out: FactSpecs = {}
    readme = profile.path_of("readme_file")
    if readme:
        out[README_FACT] = {"op": "file", "path": readme, "max_bytes": _README_MAX_BYTES}
    for kind, _label, paths in _documents(profile):
        for i, rel in enumerate(paths):
            # read (its head only), not stat'ed: a runbook of blank lines is as empty as one
            # of 0 bytes, and was READY
            out[_fact_key(kind, i)] = {
                "op": "file",
                "path": profile.resolve(_doc_path(profile, rel)),
                "max_bytes": _DOC_HEAD_BYTES,
            }
    return out


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    f.details["readme"] = _readme(ctx, f)
    f.details["documents"] = {
        kind: _document(ctx, f, kind, label, paths)
        for kind, label, paths in _documents(ctx.profile)
    }
    return f.outcome(
        "Documentation is complete: README sections, API docs, deployment guide and runbooks",
        subject="Documentation",
    )


def headings(text: str) -> list[str]:
    """Markdown headings (ATX ``# x`` at any level, setext ``x`` over ``===``/``---``), outside code fences."""
    found: list[str] = []
    fence = ""  # the open code fence's marker (```` or ~~~), "" outside one
    comment = False  # inside an HTML comment block
    previous = ""
    # A byte-order mark (editors on Windows write one) is not text: "\ufeff# Installation"
    # is the README's first heading, not a paragraph.
    for line in text.removeprefix("\ufeff").splitlines():
        m = _FENCE.match(line)
        if fence:
            # CommonMark: only a run of the same character, at least as long, with nothing
            # after it closes a fence (a ```` block shows Markdown that holds ``` fences)
            marker, rest = m.groups() if m else ("", "x")
            if marker[:1] == fence[0] and len(marker) >= len(fence) and not rest.strip():
                fence = ""
            continue
        if comment or _COMMENT_START.match(line):
            comment = "-->" not in (line.split("<!--", 1)[1] if not comment else line)
            previous = ""
            continue
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):  # ``x`` is inline code
            fence = m.group(1)
            previous = ""
            continue
        html = _HTML_HEADING.match(line)
        if html:
            found.append(_TAG.sub("", html.group(2)).strip())
            previous = ""
            continue
        atx = _ATX.match(line)
        if atx:
            found.append(re.sub(r"\s+#+$", "", atx.group(1) or "").strip())
            previous = ""
            continue
        if (
            _SETEXT.match(line)
            and previous.strip()
            and not previous.startswith((" " * 4, "\t"))
            and not _NOT_PARAGRAPH.match(previous)
        ):
            found.append(previous.strip())
            previous = ""
            continue
        previous = line
    return found


def has_section(found: list[str], section: str) -> bool:
    """Case-insensitive, whole-word match: "Usage" matches "## Usage examples"."""
    # the name is read as the headings are (its own ``_`` or ``*`` marks stripped too), or
    # "Quick_start" could never match the heading "## Quick_start"
    wanted = _plain(section).strip() or section.strip()
    pattern = re.compile(rf"(?<!\w){re.escape(wanted)}(?!\w)", re.IGNORECASE)
    return any(pattern.search(_plain(h)) for h in found)


def _plain(heading: str) -> str:
    """Strip inline emphasis/code marks so ``**Usage**`` counts as "Usage"."""
    return re.sub(r"[*_`]", "", heading)


def _readme(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    rel = str(ctx.profile.get("readme_file") or "README.md")
    sections = [str(s) for s in ctx.profile.get("readme_sections") or ()]
    fact = ctx.fact(README_FACT)
    path = fact.get("path") or ctx.profile.path_of("readme_file")
    out: dict[str, Any] = {"file": path, "exists": bool(fact.get("exists"))}
    if unreadable(fact):
        f.unknown(f"cannot stat README {path} ({fact['error']})", "Rerun with --sudo")
        return out
    if not fact.get("exists") or fact.get("type") != "file":
        f.fail(
            f"README {path} does not exist",
            f"Create {rel} with {', '.join(sections) or 'project'} sections",
        )
        return out
    if fact.get("text") is None:
        f.unknown(f"cannot read README {path} ({fact.get('error')})", "Rerun with --sudo")
        return out
    found = headings(str(fact["text"]))
    missing = [s for s in sections if not has_section(found, s)]
    out.update(headings=found, missing_sections=missing)
    for section in missing:
        problem = f"README {path} has no {section!r} section"
        if fact.get("truncated"):
            f.unknown(f"{problem} in its first {_README_MAX_BYTES} bytes", None)
        else:
            f.warn(problem, f"Add {section} section to {rel}")
    return out


def _blank(st: Mapping[str, Any]) -> bool:
    """The whole file was read and holds nothing but whitespace."""
    text = st.get("text")
    return isinstance(text, str) and not st.get("truncated") and not text.strip()


def _document(
    ctx: CheckContext, f: Findings, kind: str, label: str, paths: list[str]
) -> dict[str, Any]:
    expected = [_doc_path(ctx.profile, p) for p in paths]
    stats = [ctx.fact(_fact_key(kind, i)) for i in range(len(paths))]
    found = [(rel, st) for rel, st in zip(expected, stats, strict=True) if st.get("exists")]
    out: dict[str, Any] = {"expected": expected}
    if found:
        rel, st = found[0]
        out.update(path=st.get("path"), size=st.get("size"))
        if st.get("type") != "file":
            f.warn(f"{label} {st.get('path')} is not a file", f"Create {label} ({rel})")
        elif not st.get("size"):
            f.warn(f"{label} {st.get('path')} is empty", f"Write the {label} ({rel})")
        elif _blank(st):
            f.warn(
                f"{label} {st.get('path')} is empty (only whitespace)",
                f"Write the {label} ({rel})",
            )
        return out
    errors = [st for st in stats if unreadable(st)]
    if errors:
        f.unknown(
            f"cannot tell whether {label} exists ({errors[0].get('path')}: {errors[0]['error']})",
            "Rerun with --sudo",
        )
        return out
    others = f" (or {', '.join(expected[1:])})" if len(expected) > 1 else ""
    f.warn(
        f"{label} is missing: expected {ctx.profile.resolve(expected[0])}{others}",
        f"Create {label} ({expected[0]})",
    )
    return out


register(
    "documentation",
    title="Documentation",
    description=(
        "README exists with the required sections (Markdown headings); API documentation, a "
        "deployment guide and runbooks for incident response, escalation and rollback exist."
    ),
    categories=("operations",),
    suites=("validate",),
    facts=facts,
    defaults=DEFAULTS,
    profile_keys=(
        "readme_file",
        "readme_sections",
        "docs_dir",
        "api_docs",
        "deployment_guide",
        "runbooks",
    ),
    aliases=("docs",),
    order=60,
)(evaluate)
