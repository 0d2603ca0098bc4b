"""``documentation`` on real application trees, read through the probe."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from readiness.checks.documentation import has_section, headings
from readiness.model import CheckResult, Status
from readiness.registry import get
from tests.services.apps import audit_local, one
from tests.services.cli import local_inventory, validate_check

README = """\
# Mahavishnu

## Installation
Unpack and start.

## Usage
`mahavishnu serve`

## Configuration
See settings/.
"""

AppMaker = Callable[..., Path]


def docs(**changes: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "README.md": README,
        "docs/API.md": "# API\n",
        "docs/DEPLOYMENT.md": "# Deploy\n",
        "docs/runbooks/incident-response.md": "# Incident response\n",
        "docs/runbooks/escalation.md": "# Escalation\n",
        "docs/runbooks/rollback.md": "# Rollback\n",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def audit(app_tree: AppMaker, tree: dict[str, str], **profile: Any) -> CheckResult:
    return one(audit_local(app_tree(files=tree), ["docs"], profile))


def test_complete_documentation_is_ready(app_tree: AppMaker) -> None:
    result = audit(app_tree, docs())
    assert result.check_name == "documentation"
    assert result.status is Status.READY, result.message
    assert result.details["readme"]["missing_sections"] == []
    assert result.details["documents"]["runbooks.rollback"]["path"].endswith(
        "/app/docs/runbooks/rollback.md"
    )
    assert result.recommendations == ()


def test_missing_readme_is_not_ready(app_tree: AppMaker) -> None:
    result = audit(app_tree, docs(**{"README.md": None}))
    assert result.status is Status.NOT_READY
    assert result.message.endswith("/app/README.md does not exist")
    assert result.recommendations == (
        "Create README.md with Installation, Usage, Configuration sections",
    )


def test_readme_missing_a_section_degrades_with_the_section_named(app_tree: AppMaker) -> None:
    text = README.replace("## Usage\n", "## Examples\n")
    result = audit(app_tree, docs(**{"README.md": text}))
    assert result.status is Status.DEGRADED
    assert result.details["readme"]["missing_sections"] == ["Usage"]
    assert "has no 'Usage' section" in result.message
    assert result.recommendations == ("Add Usage section to README.md",)


def test_setext_any_level_and_case_insensitive_headings_count(app_tree: AppMaker) -> None:
    text = (
        "Mahavishnu\n==========\n\n"
        "INSTALLATION\n------------\nsteps\n\n"
        "###### usage examples ######\n\n"
        "**Configuration**\n---\n"
    )
    result = audit(app_tree, docs(**{"README.md": text}))
    assert result.status is Status.READY, result.details


def test_a_readme_saved_with_a_byte_order_mark_and_crlf_is_read(app_tree: AppMaker) -> None:
    """Was DEGRADED "no 'Installation' section": the BOM hid the first heading."""
    text = "\ufeff# Installation\r\nsteps\r\n\r\n## Usage\r\nrun\r\n\r\n## Configuration\r\n"
    result = audit(app_tree, docs(**{"README.md": text}))
    assert result.status is Status.READY, result.details
    assert result.details["readme"]["headings"] == ["Installation", "Usage", "Configuration"]


def test_headings_inside_code_fences_do_not_count(app_tree: AppMaker) -> None:
    text = README.replace("## Configuration\n", "```md\n## Configuration\n```\n")
    result = audit(app_tree, docs(**{"README.md": text}))
    assert result.status is Status.DEGRADED
    assert result.details["readme"]["missing_sections"] == ["Configuration"]


def _validate_readme(tmp_path: Path, readme: str) -> dict[str, Any]:
    """The documentation check's JSON result from a real `readiness validate` of a local app
    whose README is ``readme`` (exit 0: a missing section is a warning, not blocking)."""
    import json

    from tests.services.apps import write_app
    from tests.services.cli import local_inventory, run_cli

    app = write_app(tmp_path / "app", files=docs(**{"README.md": readme}))
    inv = local_inventory(tmp_path / "inv.yml", app)
    res = run_cli("validate", "-i", str(inv), "-c", "documentation", "--json", "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    (check,) = json.loads(res.stdout)["hosts"][0]["checks"]
    return dict(check)


def test_a_section_shown_only_inside_a_longer_code_fence_is_missing(tmp_path: Path) -> None:
    """A README that shows a Markdown template in a ```` fence (holding ``` fences of its
    own) has no 'Installation' section: the inner ``` closed the fence on the old code, so
    the template's heading counted and `readiness validate` said READY (CommonMark: only a
    fence of the same character, at least as long, with no info string, closes it)."""
    template = "````markdown\n## Installation\n```bash\npip install x\n```\n````\n"
    text = README.replace("## Installation\nUnpack and start.\n", "## Template\n" + template)
    check = _validate_readme(tmp_path, text)
    assert check["status"] == "degraded", check
    assert check["details"]["readme"]["missing_sections"] == ["Installation"]
    assert "has no 'Installation' section" in check["message"]
    closed = "```bash\n# not a heading\n```bash\n## Installation\n```\n"  # ```bash opens
    assert headings(closed + "## Usage\n") == ["Usage"]


def test_a_table_of_contents_above_a_rule_is_no_section(tmp_path: Path) -> None:
    """ "- [Configuration](#configuration)" then "---" is a list and a thematic break
    (CommonMark), not a setext heading: the old code counted the last TOC entry as the
    'Configuration' section of a README that has none, and `readiness validate` said READY."""
    toc = "- [Installation](#installation)\n- [Usage](#usage)\n- [Configuration](#configuration)\n"
    body = README.partition("## Configuration")[0].partition("\n")[2]  # no Configuration
    text = "# Mahavishnu\n" + toc + "---\n" + body
    check = _validate_readme(tmp_path, text)
    assert check["status"] == "degraded", check
    assert check["details"]["readme"]["missing_sections"] == ["Configuration"]
    assert headings("> Usage\n---\n1. Usage\n---\nUsage\n---\n") == ["Usage"]


def test_a_section_commented_out_is_missing_and_an_html_heading_is_one(tmp_path: Path) -> None:
    """A README template's "<!-- ## Configuration (TODO) -->" is no section (CommonMark: an
    HTML comment block): validate said READY for a README without one. An HTML heading on
    its own line ("<h2>Usage</h2>", as GitHub renders it) is a section: validate said
    DEGRADED "has no 'Usage' section"."""
    body = README.partition("## Usage")[0]  # Installation only
    text = body + '<h2 id="usage">Usage</h2>\n\n<!--\n## Configuration\nTODO\n-->\n'
    check = _validate_readme(tmp_path, text)
    assert check["status"] == "degraded", check
    assert check["details"]["readme"]["missing_sections"] == ["Configuration"]
    assert headings("<!-- ## Usage --> text\n<!--\n## Usage\n") == []  # never closed
    assert headings("<!-- x -->\n## Usage\n<H3>Configuration <code>x</code></H3>\n") == [
        "Usage",
        "Configuration x",
    ]


def test_missing_runbooks_are_named_with_the_expected_path(app_tree: AppMaker) -> None:
    tree = docs(**{"docs/runbooks/escalation.md": None, "docs/runbooks/incident-response.md": None})
    result = audit(app_tree, tree)
    assert result.status is Status.DEGRADED
    warnings = result.details["warnings"]
    assert any(
        w.startswith("incident-response runbook is missing: expected ")
        and "/app/docs/runbooks/incident-response.md (or docs/runbooks/incident_response.md)" in w
        for w in warnings
    )
    assert any(w.endswith("/app/docs/runbooks/escalation.md") for w in warnings)
    assert "Create escalation runbook (docs/runbooks/escalation.md)" in result.recommendations


def test_missing_api_docs_and_deployment_guide_degrade(app_tree: AppMaker) -> None:
    result = audit(app_tree, docs(**{"docs/API.md": None, "docs/DEPLOYMENT.md": None}))
    assert result.status is Status.DEGRADED
    assert result.recommendations == (
        "Create API documentation (docs/API.md)",
        "Create deployment guide (docs/DEPLOYMENT.md)",
    )


def test_an_alternative_location_satisfies_a_document(app_tree: AppMaker) -> None:
    tree = docs(**{"docs/API.md": None, "docs/api/README.md": "# API\n"})
    result = audit(app_tree, tree)
    assert result.status is Status.READY, result.message
    assert result.details["documents"]["api_docs"]["path"].endswith("/docs/api/README.md")


def test_an_empty_deployment_guide_degrades(app_tree: AppMaker) -> None:
    result = audit(app_tree, docs(**{"docs/DEPLOYMENT.md": ""}))
    assert result.status is Status.DEGRADED
    assert "deployment guide" in result.message
    assert "is empty" in result.message


def test_profile_can_change_sections_docs_dir_and_drop_a_runbook(app_tree: AppMaker) -> None:
    tree = {
        "README.md": "# Quick start\n",
        "handbook/API.md": "api",
        "handbook/DEPLOYMENT.md": "deploy",
        "handbook/runbooks/incident-response.md": "ir",
        "handbook/runbooks/rollback.md": "rb",
    }
    profile = {
        "readme_sections": ["Quick start"],
        "docs_dir": "handbook",
        "runbooks": {"escalation": []},
    }
    result = audit(app_tree, tree, **profile)
    assert result.status is Status.READY, result.message
    assert "runbooks.escalation" not in result.details["documents"]


def test_bundled_example_is_degraded_only_for_the_missing_escalation_runbook() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "mahavishnu"
    result = one(audit_local(example, ["documentation"]))
    assert result.status is Status.DEGRADED
    assert result.recommendations == ("Create escalation runbook (docs/runbooks/escalation.md)",)


def test_docs_is_an_alias_of_documentation() -> None:
    assert get("docs").name == "documentation"


def test_heading_parser_reads_atx_and_setext_but_not_thematic_breaks() -> None:
    text = "Title\n=====\n\n---\n\n## Usage ##\n#NotAHeading\n    indented\n"
    assert headings(text) == ["Title", "Usage"]
    assert has_section(["Usage examples"], "usage")
    assert not has_section(["Misusage"], "Usage")


def test_an_openapi_document_is_api_documentation(tmp_path: Path) -> None:
    """A service documenting its API as docs/openapi.yaml (FastAPI's export) and its
    deployment in reStructuredText was DEGRADED "API documentation is missing: expected
    …/docs/API.md" and "deployment guide is missing"."""
    import json

    from tests.services.apps import write_app
    from tests.services.cli import local_inventory, run_cli

    tree = docs(**{"docs/API.md": None, "docs/DEPLOYMENT.md": None})
    tree["docs/openapi.yaml"] = (
        "openapi: 3.1.0\ninfo: {title: Mahavishnu, version: '1'}\npaths: {}\n"
    )
    tree["docs/deployment.rst"] = "Deployment\n==========\n\nRun the installer.\n"
    app = write_app(tmp_path / "app", files=tree)
    inv = local_inventory(tmp_path / "inv.yml", app)
    res = run_cli("validate", "-i", str(inv), "-c", "documentation", "--format", "json")
    (check,) = json.loads(res.stdout)["hosts"][0]["checks"]
    assert check["status"] == "ready", check["message"]
    assert check["details"]["documents"]["api_docs"]["path"] == str(app / "docs" / "openapi.yaml")


@pytest.mark.parametrize("name", ["Quick_start", "*Usage*", "snake_case_name"])
def test_a_section_name_with_emphasis_marks_matches_its_heading_as_written(
    tmp_path: Path, name: str
) -> None:
    """Headings are read without ``*``/``_``/backtick marks; the profile's names were not,
    so ``readme_sections: [Quick_start]`` was missing from a README with that very heading
    (and remediate could never add it: its own heading did not count)."""
    (tmp_path / "README.md").write_text(f"# app\n\n## {name}\n\ntext\n", encoding="utf-8")
    inventory = local_inventory(tmp_path / "inv.yml", tmp_path, readme_sections=[name])
    result = validate_check(inventory, "documentation")
    assert result["details"]["readme"]["missing_sections"] == [], result
    assert f"no '{name}' section" not in result["message"], result
