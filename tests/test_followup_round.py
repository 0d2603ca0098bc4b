"""What the follow-up round asks, and why it cannot be asked speculatively in the first.

docs/performance.md ("The follow-up round, measured: speculation not built") rests on
two facts checked here: with settings that say nothing and no first-round facts, no
check's follow-up asks anything (so a speculative first round computed from the profile
alone would carry nothing); and on the bundled example every follow-up op is named by
the host's own settings or its own first-round listings.
"""

from __future__ import annotations

from pathlib import Path

from readiness import runner
from readiness.api import host_profile
from readiness.bench import write_example_app
from readiness.collect import run_probe
from readiness.registry import all_checks, default_profile, resolve_names
from readiness.transport import LocalTransport
from tests.services.apps import LocalTestHost


def test_no_follow_up_asks_anything_from_the_profile_alone(tmp_path: Path) -> None:
    # Every registered check (every suite), the default profile rooted at a real tree.
    host = LocalTestHost(vars={"readiness": {"app_root": str(tmp_path)}})
    profile = host_profile(host, [], defaults=default_profile())
    nothing = runner._app_config({}, profile)
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "mahavishnu.yaml").write_text("{}\n")
    empty = runner._app_config(
        {"app:settings": {"exists": True, "text": "{}\n", "path": "settings/mahavishnu.yaml"}},
        profile,
    )
    with_followup = [s for s in all_checks() if s.followup is not None]
    assert len(with_followup) >= 5  # the test would pass vacuously without them
    for spec in with_followup:
        assert spec.followup is not None
        for app in (nothing, empty):
            asked = spec.followup(profile, app, {})
            assert asked == {}, (
                f"{spec.name}'s follow-up asks {sorted(asked)} from the profile alone: those "
                "ops could travel in the first round (see docs/performance.md)"
            )


def test_the_example_follow_up_ops_are_named_by_its_settings_or_its_listings(
    tmp_path: Path,
) -> None:
    root = tmp_path / "app"
    write_example_app(0, root)
    host = LocalTestHost(vars={"readiness": {"app_root": str(root)}})
    profile = host_profile(host, [], defaults=default_profile())
    specs = resolve_names(None)
    facts = run_probe(LocalTransport(), runner._gather(specs, profile))["facts"]
    app = runner._app_config(facts, profile)
    asked: dict[str, str] = {}
    for spec in specs:
        if spec.followup is not None:
            asked.update({k: v["op"] for k, v in spec.followup(profile, app, facts).items()})
    assert asked == {
        "configuration:otlp_tcp": "tcp",
        "error_handling:dlq_path": "write_test",
        "database_migration:script:versions/3f2a9c1d7b44_create_workflows.py": "file",
        "database_migration:script:versions/8b61e0a4c2f9_add_workflow_runs.py": "file",
        "monitoring:dashboard:mahavishnu.json": "file",
    }
    # Without the example's settings the settings-named ops go; without the first round's
    # listings the listing-named reads go: nothing is left to ask speculatively.
    blank = runner._app_config({}, profile)
    for spec in specs:
        if spec.followup is None:
            continue
        without_settings = spec.followup(profile, blank, facts)
        without_facts = spec.followup(profile, app, {})
        assert "configuration:otlp_tcp" not in without_settings
        assert "error_handling:dlq_path" not in without_settings
        assert not [k for k in without_facts if ":script:" in k or ":dashboard:" in k]
        assert spec.followup(profile, blank, {}) == {}
