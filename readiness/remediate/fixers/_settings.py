"""Add missing settings to the app's settings YAML as text (comments and layout kept)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...profile import Profile
from ..plan import Change, CreateFile, EditFile
from ..yamltext import YamlEditError, insert_missing
from . import FixInput, link_refusal


def settings_reads(profile: Profile) -> list[str]:
    path = profile.path_of("settings_file")
    return [path] if path else []


def add_settings(
    inp: FixInput, inserts: Sequence[tuple[str, Any]], what: str
) -> tuple[Change | None, list[str]]:
    """One edit of the settings file adding every ``(dotted, value)``; notes for refusals."""
    path = inp.profile.path_of("settings_file")
    if not path or not inserts:
        return None, []
    state = inp.file(path)
    refusal = link_refusal(state, "edit the settings")
    if refusal:
        return None, [refusal]
    if state.exists and state.text is None:
        keys = ", ".join(d for d, _ in inserts)
        why = (
            f"refused: {path} is {state.unreadable}" if state.unreadable else f"cannot read {path}"
        )
        return None, [f"{why}; add {keys} by hand"]
    old = state.text or ""
    new, notes = old, []
    for dotted, value in inserts:
        try:
            new = insert_missing(new, dotted, value)
        except YamlEditError as exc:
            notes.append(f"refused: {exc}")
    if new == old:
        return None, notes
    if not state.exists:
        return CreateFile(path, new, mode=0o644), notes
    return EditFile(path, old, new, what=what), notes
