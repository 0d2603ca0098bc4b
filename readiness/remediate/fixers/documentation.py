"""``documentation``: add the README's missing sections; create missing API docs,
deployment guide and runbooks from templates filled with what is known about the host."""

from __future__ import annotations

from ...checks.documentation import has_section, headings
from ...model import CheckResult
from ...profile import Profile
from ..plan import AppendLines, Change, CreateFile, Fix
from . import FixInput, creation_refusal, fixer, link_refusal
from ._templates import document, facts_of, readme, readme_section


def _reads(profile: Profile) -> list[str]:
    readme_path = profile.path_of("readme_file")
    return [readme_path] if readme_path else []


def _missing_documents(profile: Profile, result: CheckResult) -> list[str]:
    """The paths the documents the check did not find would be created at."""
    out = []
    for info in (result.details.get("documents") or {}).values():
        if isinstance(info, dict) and not info.get("path") and info.get("expected"):
            target = profile.resolve(str(info["expected"][0]))
            if target:
                out.append(target)
    return out


@fixer(
    "documentation",
    summary="append missing README sections; create API docs, deployment guide, runbooks",
    reads=_reads,
    named=_missing_documents,
)
def fix(inp: FixInput) -> Fix | None:
    k = facts_of(inp.profile, inp.host)
    changes: list[Change] = []
    addresses: list[str] = []
    notes: list[str] = []
    readme_path = inp.profile.path_of("readme_file")
    refusal = link_refusal(inp.file(readme_path), "append") if readme_path else None
    if refusal and inp.matching("README"):
        notes.append(refusal)
    readme_change = None if refusal else _readme(inp, k)
    if readme_change is not None and readme_change[0] is None:
        notes += readme_change[1]
    elif readme_change is not None:
        changes.append(readme_change[0])
        addresses += readme_change[1]
    documents = inp.result.details.get("documents") or {}
    for kind, info in documents.items():
        if info.get("path") or not info.get("expected"):
            continue
        target = inp.profile.resolve(str(info["expected"][0]))
        found = inp.matching(" is missing: expected ")
        mine = [p for p in found if target and target in p]
        refusal = creation_refusal(inp.file(target)) if target and mine else None
        if refusal:
            notes.append(refusal)
        elif target and mine:
            changes.append(CreateFile(target, document(str(kind), k)))
            addresses += mine
    if not changes and not notes:
        return None
    return Fix(
        "documentation",
        "complete the documentation",
        tuple(changes),
        tuple(addresses),
        tuple(notes),
    )


def _readme(
    inp: FixInput, k: dict[str, str]
) -> tuple[Change, list[str]] | tuple[None, list[str]] | None:
    """(the README change, the findings it addresses), or (None, [refusal]), or None."""
    path = inp.profile.path_of("readme_file")
    sections = [str(s) for s in inp.profile.get("readme_sections") or ()]
    if not path:
        return None
    state = inp.file(path)
    if not state.exists:
        missing = inp.matching("README", "does not exist")
        return (CreateFile(path, readme(sections, k)), missing) if missing else None
    details = inp.result.details.get("readme") or {}
    absent = [str(s) for s in details.get("missing_sections") or ()]
    if not absent or state.text is None:
        return None
    lines: list[str] = [""]
    for section in absent:
        lines += readme_section(section, k)
    addressed = [p for s in absent for p in inp.matching("README", f"no {s!r} section")]
    change = AppendLines(path, tuple(lines[:-1]), old_text=state.text)
    # Read back as the check reads it: after a code block left open (or an HTML comment),
    # appended headings are not headings, and every --apply would only be reverted.
    found = headings(change.new_text())
    unread = [s for s in absent if not has_section(found, s)]
    if unread:
        names = ", ".join(repr(s) for s in unread)
        return None, [
            f"refused: sections appended to {path} would not read as {names} (does the "
            "README end inside an unclosed code block or HTML comment?): close it, or add "
            "them by hand"
        ]
    return change, addressed
