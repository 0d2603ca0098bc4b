"""Invisible formatting characters from a host are shown, never passed, in every format.

A bidi override (U+202E), isolate (U+2067) or mark (U+200F), a zero-width space or joiner,
a BOM, a soft hyphen, a tag character (U+E0041: "ASCII smuggling") or a variation selector
in a host's text makes a viewer draw the line differently from what it is (Trojan Source:
``txt.exe`` read as ``exe.txt``). They reached TAP, Nagios, JUnit and Markdown raw (and text
and table for every one but the bidi overrides). Every format of the renderer table is
checked, so a new format is covered the day it is added.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from readiness.model import CheckResult, FleetReport, HostReport, Status
from readiness.report import FORMATS, render
from tests.services.apps import write_app
from tests.services.cli import local_inventory, run_cli

# One of each kind: override + pop, isolate, RLM, ALM, ZWSP, ZWJ, BOM, soft hyphen, word
# joiner, a tag character, a variation selector, a Hangul filler, an interlinear annotation.
SAMPLES = (
    "\u202e\u202c\u2067\u2069\u200f\u061c\u200b\u200d\ufeff\u00ad\u2060\U000e0041\ufe0f\u3164\ufff9"
)
RAW = re.compile(f"[{SAMPLES}]")
HOSTILE = f"backup ok \u202etxt.exe\u202c {SAMPLES} end"
TS = datetime(2025, 2, 5, 10, 30, tzinfo=timezone.utc)


def test_the_class_holds_every_format_character_of_this_python() -> None:
    """INVISIBLE is written out (building it from unicodedata costs start-up): every Cf, Zl
    and Zp code point of this Python's Unicode database must be in it."""
    from readiness.report._clean import INVISIBLE

    invisible = re.compile(f"[{INVISIBLE}]")
    missing = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Cf", "Zl", "Zp") and not invisible.match(chr(code))
    ]
    assert not missing, f"add to readiness/report/_clean.INVISIBLE: {missing}"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_invisible_characters_in_a_repository_name_are_shown_in_every_format(
    fmt: str, tmp_path: Path
) -> None:
    """A repository named in the app's manifest is quoted in the message, details and
    recommendation of repository_access: through a real `readiness validate`."""
    manifest = {"repos": [{"name": f"{HOSTILE} octocat", "path": str(tmp_path / "gone")}]}
    write_app(tmp_path / "app", files={"repos.yaml": yaml.safe_dump(manifest)})
    inv = local_inventory(tmp_path / "inv.yml", tmp_path / "app")
    res = run_cli("validate", "-i", str(inv), "-c", "repository_access", "--format", fmt)
    assert res.returncode == 1, res.stderr
    raw = sorted({f"U+{ord(c):04X}" for c in RAW.findall(res.stdout)})
    assert not raw, f"{fmt} passed {raw} through"
    if fmt not in ("table", "prometheus"):  # these show no message
        assert "octocat" in res.stdout, res.stdout
        assert re.search(r"\\+u202e", res.stdout), f"{fmt} lost the override instead of showing it"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_invisible_characters_in_every_host_field_are_shown(fmt: str) -> None:
    """Host name, reason, check name, message, details and recommendations, in each format."""
    result = CheckResult(
        f"configuration{SAMPLES}\x1b",
        Status.NOT_READY,
        HOSTILE,
        {"file": f"/srv/{HOSTILE}", HOSTILE: [HOSTILE, {"k": HOSTILE}]},
        (HOSTILE,),
        TS,
        f"web{SAMPLES}",
    )
    skipped = CheckResult("docs", Status.SKIPPED, HOSTILE, {}, (), TS, f"web{SAMPLES}")
    host = HostReport(f"web{SAMPLES}", (result, skipped), address=HOSTILE, groups=(HOSTILE,))
    gone = HostReport(f"db{SAMPLES}", address="10.0.0.9", reason=HOSTILE)
    out = render(FleetReport((host, gone), generated_at=TS), fmt)
    raw = sorted({f"U+{ord(c):04X}" for c in RAW.findall(out)})
    assert not raw, f"{fmt} passed {raw} through"
    # the escape is shown as written: the text report's upper-cased check name said \U202E
    # (an 8-digit escape's prefix) and \X1B for \u202e and \x1b
    assert not re.search(r"\\+(?:U202E|X1B)", out), fmt
    if fmt == "sarif":  # ASCII JSON, but a dashboard shows the decoded message text
        run = json.loads(out)["runs"][0]
        texts = [r["message"]["text"] for r in run["results"]]
        texts += [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
        assert texts and not RAW.search("".join(texts)), texts
