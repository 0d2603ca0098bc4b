"""Profile layers: defaults ← profile file ← inventory vars ← overrides."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from readiness.api import host_profile
from readiness.errors import ProfileError
from readiness.profile import (
    JSON_BODIES,
    REGEX_KEYS,
    WHOLE_AT_LEAST,
    WORDS,
    Profile,
    deep_merge,
    load_profile_file,
    merge_layers,
)
from readiness.registry import default_profile
from tests.services.apps import LocalTestHost


def test_default_profile_has_the_documented_core_keys() -> None:
    p = default_profile()
    for key in (
        "app_root",
        "settings_file",
        "env_file",
        "env_prefix",
        "pidfile",
        "backup_dir",
        "required_env",
        "thresholds",
    ):
        assert key in p
    assert p["env_prefix"] == "MAHAVISHNU_"
    assert p["env_nested_delimiter"] == "__"


def test_later_layers_win_and_dicts_merge_recursively() -> None:
    merged = merge_layers(
        {"app_root": "/a", "thresholds": {"x": 1, "y": 2}},
        [("file", {"thresholds": {"y": 3}}), ("host", {"app_root": "/b"})],
    )
    assert merged["app_root"] == "/b"
    assert merged["thresholds"] == {"x": 1, "y": 3}


def test_unknown_keys_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ProfileError, match="did you mean 'settings_file'"):
        merge_layers({"settings_file": "s.yaml"}, [("profile file p.yml", {"setings_file": "x"})])


def test_replacing_a_mapping_with_a_scalar_is_refused() -> None:
    with pytest.raises(ProfileError, match="thresholds"):
        deep_merge({"thresholds": {"a": 1}}, {"thresholds": 5})


def test_host_vars_override_the_profile_file(tmp_path: Path) -> None:
    pf = tmp_path / "p.yml"
    pf.write_text("app_root: /srv/from-file\nbackup_dir: /var/backups/app\n")
    host = LocalTestHost(vars={"readiness": {"app_root": "/srv/from-host"}})
    from readiness.api import profile_layers

    p = host_profile(host, profile_layers(str(pf)))
    assert p["app_root"] == "/srv/from-host"
    assert p["backup_dir"] == "/var/backups/app"


def test_profile_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    pf = tmp_path / "bad.yml"
    pf.write_text("app_root: /x\nthresholds: [unclosed\n")
    with pytest.raises(ProfileError, match=r"bad.yml:\d+"):
        load_profile_file(pf)


def test_relative_paths_resolve_under_app_root_on_the_host() -> None:
    p = Profile(
        {"app_root": "/opt/app", "settings_file": "settings/a.yaml", "backup_dir": "/var/b"}
    )
    assert p.path_of("settings_file") == "/opt/app/settings/a.yaml"
    assert p.path_of("backup_dir") == "/var/b"
    assert p.resolve("../x") == "/opt/x"


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"require_auth": "yes please"}, "'require_auth' must be true/false, got 'yes please'"),
        ({"require_auth": "false"}, "'require_auth' must be true/false"),
        ({"require_auth": 0}, "'require_auth' must be true/false"),
        ({"repository_forbid_dirty": "always"}, "must be true/false or 'warn'"),
        ({"rbac": {"enabled": "on"}}, "'rbac.enabled' must be true/false"),
        ({"app_root": ["/a"]}, "'app_root' must be a string"),
        ({"app_name": True}, "'app_name' must be a string"),
        ({"thresholds": {"tls_min_days_left": True}}, "must be a number"),
    ],
)
def test_every_key_keeps_the_type_of_its_default(layer: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        merge_layers(default_profile(), [("profile file p.yml", layer)])


def test_documented_words_null_and_json_bodies_pass_the_type_check() -> None:
    merged = merge_layers(
        default_profile(),
        [
            (
                "profile file p.yml",
                {
                    "require_auth": False,
                    "repository_forbid_dirty": "warn",
                    "repository_forbid_detached": "WARN ",
                    "pidfile": None,
                    "workflow_state": {"start_json": {"dry_run": "maybe", "workflow": 7}},
                },
            )
        ],
    )
    assert merged["require_auth"] is False
    assert merged["workflow_state"]["start_json"] == {"dry_run": "maybe", "workflow": 7}


def test_profiles_of_two_hosts_share_no_mutable_state() -> None:
    """merge_layers copies once (no second deepcopy in Profile): still nothing shared."""
    defaults = default_profile()
    one = merge_layers(defaults, [("a", {"app_root": "/a"})])
    two = merge_layers(defaults, [("b", {"app_root": "/b"})])
    one["thresholds"]["backup_max_age_hours"] = -1  # a check misbehaving
    one.to_dict()["adapters"].clear()
    assert two["thresholds"]["backup_max_age_hours"] != -1
    assert defaults["thresholds"]["backup_max_age_hours"] != -1
    assert merge_layers(defaults, [])["adapters"] == defaults["adapters"]
    assert merge_layers(defaults, [])["adapters"] is not defaults["adapters"]


def _null_default_keys(node: dict[str, Any], where: str = "") -> list[str]:
    """Every dotted key whose built-in default is null (the schema is the source of truth)."""
    keys = []
    for key, value in node.items():
        dotted = f"{where}.{key}" if where else key
        if value is None:
            keys.append(dotted)
        elif isinstance(value, dict):
            keys.extend(_null_default_keys(value, dotted))
    return keys


NULL_KEYS = _null_default_keys(default_profile())
# Values of the wrong type for each declared kind; SENTINEL must never reach the message.
WRONG_VALUES: dict[str, list[Any]] = {
    "a string": [["postgresql://u:SENTINEL-pw@db/app"], {"SENTINEL": 1}, 5, True],
    "a mapping": ["SENTINEL-yes", ["SENTINEL"], 1, True],
    "an argv list of strings (or one program as a string)": [
        {"SENTINEL": "x"},
        [["SENTINEL", "nested"]],
        ["ok", None],
        7,
    ],
}

RIGHT_VALUES: dict[str, Any] = {
    "a string": "/srv/x",
    "a mapping": {},
    "an argv list of strings (or one program as a string)": ["prog", "--flag", 1],
}


def _layer(dotted: str, value: Any) -> dict[str, Any]:
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value  # type: ignore[no-any-return]


def test_every_null_default_key_has_a_declared_type_and_nothing_else_does() -> None:
    from readiness.profile import NULL_DEFAULT_TYPES

    assert sorted(NULL_DEFAULT_TYPES) == sorted(NULL_KEYS)
    assert set(NULL_DEFAULT_TYPES.values()) <= set(WRONG_VALUES)
    assert {"pidfile", "database_dsn", "backup_roundtrip.admin_dsn"} <= set(NULL_KEYS)


@pytest.mark.parametrize("dotted", NULL_KEYS)
def test_a_null_default_key_refuses_a_wrong_type_naming_key_and_source(dotted: str) -> None:
    from readiness.profile import NULL_DEFAULT_TYPES

    kind = NULL_DEFAULT_TYPES[dotted]
    for value in WRONG_VALUES[kind]:
        with pytest.raises(ProfileError) as caught:
            merge_layers(default_profile(), [("profile file p.yml", _layer(dotted, value))])
        message = str(caught.value)
        assert message.startswith(f"profile file p.yml: profile key {dotted!r} must be {kind}")
        assert "SENTINEL" not in message
    right = RIGHT_VALUES[kind]
    assert merge_layers(default_profile(), [("p", _layer(dotted, right))]).get_path(dotted) == right
    assert merge_layers(default_profile(), [("p", _layer(dotted, None))]).get_path(dotted) is None


def test_a_wrong_typed_null_default_key_is_one_line_and_exit_two_from_the_command(
    tmp_path: Path,
) -> None:
    """Every null-default key, through the real ``readiness`` command (a profile file, and
    inventory variables for one): exit 2, one line naming the key and file:line."""
    from concurrent.futures import ThreadPoolExecutor

    import yaml

    from readiness.profile import NULL_DEFAULT_TYPES
    from tests.services.cli import local_inventory, run_cli

    inventory = local_inventory(tmp_path / "inv.yml", tmp_path)

    def run_one(dotted: str) -> tuple[str, Any]:
        profile = tmp_path / f"{dotted}.yml"
        value = WRONG_VALUES[NULL_DEFAULT_TYPES[dotted]][0]
        profile.write_text(yaml.safe_dump(_layer(dotted, value)), encoding="utf-8")
        return dotted, run_cli("inventory", "-i", str(inventory), "--profile", str(profile))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run_one, NULL_KEYS))
    host_vars = tmp_path / "inv-vars.yml"
    host_vars.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        "      readiness:\n        pidfile: [SENTINEL]\n",
        encoding="utf-8",
    )
    results.append(("pidfile", run_cli("inventory", "-i", str(host_vars))))
    assert len(results) == len(NULL_KEYS) + 1
    for dotted, res in results:
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2, (dotted, res.stdout, res.stderr)
        assert len(lines) == 1, (dotted, res.stderr)
        assert f"profile key {dotted!r} must be {NULL_DEFAULT_TYPES[dotted]}" in lines[0]
        assert ".yml:" in lines[0] and "Traceback" not in res.stderr
        assert "SENTINEL" not in res.stderr + res.stdout


def _numbers(node: Any, path: str = "") -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for key, value in node.items():
        dotted = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            out += _numbers(value, dotted)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((dotted, value))
    return out


def _layer(dotted: str, value: Any) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    node = layer
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return layer


@pytest.mark.parametrize(
    "dotted", [d for d, _ in _numbers(default_profile()) if not d.startswith("resource_ranges.")]
)
def test_every_number_of_the_profile_refuses_negative_and_infinite_values(dotted: str) -> None:
    """Generated from the built-in defaults: every count, limit and timeout is 0 or more (a
    timeout or poll interval above 0); the default value itself stays accepted."""
    for bad in (-1, float("inf"), float("nan")):
        with pytest.raises(ProfileError, match=rf"profile key '{re.escape(dotted)}' must be a"):
            host_profile(LocalTestHost(), [("profile file p.yml", _layer(dotted, bad))])
    from readiness.profile import ABOVE_ZERO

    timeout = dotted.endswith(("_timeout_s", "poll_interval_s")) or dotted in ABOVE_ZERO
    if timeout:
        with pytest.raises(ProfileError, match="must be a number above 0"):
            host_profile(LocalTestHost(), [("profile file p.yml", _layer(dotted, 0))])
    default = dict(_numbers(default_profile()))[dotted]
    host_profile(LocalTestHost(), [("profile file p.yml", _layer(dotted, default))])


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        (
            "min_pass_rate: 150",
            "p.yml:3: profile key 'quality_gates.integration.min_pass_rate' must be a number "
            "from 0 to 100 (a percentage: 90, not 0.9), got 150",
        ),
        # a fraction meant as 90 % (or 100 %): the gate read 0.9 % and passed a category
        # where 1 check in 100 passed
        (
            "min_pass_rate: 0.9",
            "p.yml:3: profile key 'quality_gates.integration.min_pass_rate' must be a number "
            "from 0 to 100 (a percentage: 90, not 0.9), got 0.9",
        ),
        (
            "min_pass_rate: 1",
            "p.yml:3: profile key 'quality_gates.integration.min_pass_rate' must be a number "
            "from 0 to 100 (a percentage: 90, not 0.9), got 1",
        ),
        (
            "category: operatons",
            "p.yml:3: profile key 'quality_gates.integration.category' must be one of "
            "configuration, security, integration, performance, operations, got 'operatons'",
        ),
    ],
)
def test_a_bad_quality_gate_is_refused_by_validate_too(
    tmp_path: Path, gate: str, message: str
) -> None:
    """`readiness validate --profile` took a gate the suites refuse (a 150 % rate, a typo'd
    category) and exited 0; the same file failed only later, in CI's run-all-tests."""
    from tests.services.apps import write_app
    from tests.services.cli import local_inventory, run_cli

    inventory = local_inventory(tmp_path / "inv.yml", write_app(tmp_path / "app"))
    profile = tmp_path / "p.yml"
    profile.write_text(f"quality_gates:\n  integration:\n    {gate}\n")
    for task in ("validate", "check-config"):
        res = run_cli(task, "-i", str(inventory), "-c", "environment", "--profile", str(profile))
        assert res.returncode == 2, (task, res.stdout, res.stderr)
        assert res.stderr.strip().endswith(message), res.stderr
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    for edge in (0, 100, 99.5):  # the bounds themselves are percentages
        layer = {"quality_gates": {"integration": {"min_pass_rate": edge}}}
        merged = merge_layers(default_profile(), [("p", layer)])
        assert merged.get_path("quality_gates.integration.min_pass_rate") == edge


def _tasks_taking_a_profile() -> list[str]:
    """Every command with a --profile option, as invoke's parser knows them."""
    from readiness.tasks import ns

    names = {ctx.name: ctx for ctx in ns.to_contexts() if "." not in ctx.name}
    return sorted(name for name, ctx in names.items() if "profile" in ctx.args)


MISSPELT_GATES = {
    "securty:\n    min_pass_rate: 90": (
        "p.yml:2: profile key 'quality_gates.securty' is no built-in gate and names no "
        "category (did you mean 'security'?): a new gate needs category: one of "
        "configuration, security, integration, performance, operations"
    ),
    "perfomance: null": (
        "p.yml:2: profile key 'quality_gates.perfomance' disables no gate: there is no gate "
        "'perfomance' (did you mean 'performance'?)"
    ),
}


@pytest.mark.parametrize("task", _tasks_taking_a_profile())
def test_a_misspelt_quality_gate_is_refused_by_every_command_that_takes_a_profile(
    tmp_path: Path, task: str
) -> None:
    """`readiness validate --profile p.yml` with `quality_gates: {securty: …}` exited 0: a new
    gate with no category, which the suites refused only later; a null for a misspelt gate
    (`perfomance: null`) disabled nothing, and nothing said so. Now each command that takes
    --profile refuses both the same way, one line with file:line, exit 2 (nagios: UNKNOWN)."""
    from tests.services.apps import write_app
    from tests.services.cli import local_inventory, run_cli

    assert len(_tasks_taking_a_profile()) >= 9
    inventory = local_inventory(tmp_path / "inv.yml", write_app(tmp_path / "app"))
    profile = tmp_path / "p.yml"
    for entry, message in MISSPELT_GATES.items():
        profile.write_text(f"quality_gates:\n  {entry}\n")
        argv = [task, "-i", str(inventory), "--profile", str(profile)]
        # a command that got past the profile records in HOME's store: never the user's
        env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
        res = run_cli(*argv, cwd=tmp_path, env=env, timeout=60)
        said = res.stdout if task == "nagios" else res.stderr
        assert res.returncode == (3 if task == "nagios" else 2), (argv, res.stdout, res.stderr)
        assert said.strip().endswith(message), said
        assert said.count("\n") == 1 and "Traceback" not in res.stdout + res.stderr


def test_a_gate_a_profile_file_defines_may_be_tuned_or_disabled_by_the_inventory() -> None:
    """The refusal above judges the layers together: an inventory layer that tunes or
    disables a new gate of the profile file, or a new gate named like a category, is fine."""
    new = {"quality_gates": {"smoke": {"category": "integration", "min_pass_rate": 50}}}
    for later in ({"min_pass_rate": 80}, None):
        layers = [("profile file p.yml", new), ("inventory", {"quality_gates": {"smoke": later}})]
        merged = merge_layers(default_profile(), layers)
        assert merged.get_path("quality_gates.smoke") == (
            None if later is None else {"category": "integration", "min_pass_rate": 80}
        )
    named = {"quality_gates": {"operations": {"min_pass_rate": 90}, "performance": None}}
    merge_layers(default_profile(), [("p", named)])


def _leaf_keys(node: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = []
    for key, value in node.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            keys += _leaf_keys(value, path)
        else:
            keys.append(path)
    return keys


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    for key in reversed(path):
        value = {key: value}
    return value


LEAK_CANARY = "postgresql://app:Profile-Canary-0451@db/app"


def test_a_refused_profile_value_never_echoes_a_password() -> None:
    """Every key of the default profile, given a DSN with a password in the wrong type (a
    mapping, or a string where a number or true/false belongs): the refusal names the key
    and masks the password; it was quoted whole."""
    refused = 0
    for path in _leaf_keys(default_profile()):
        for wrong in ({"dsn": LEAK_CANARY}, LEAK_CANARY):
            try:
                merge_layers(default_profile(), [("profile file p.yml", _nested(path, wrong))])
            except ProfileError as exc:
                refused += 1
                assert "Profile-Canary-0451" not in str(exc), (path, str(exc))
                assert ".".join(path) in str(exc), (path, str(exc))
    assert refused > 50  # the sweep really met the type checks


def test_readiness_validate_refuses_such_a_profile_in_one_masked_line(tmp_path: Path) -> None:
    from tests.services.cli import run_cli

    profile = tmp_path / "p.yml"
    profile.write_text(f"env_prefix: {{dsn: '{LEAK_CANARY}'}}\n")
    done = run_cli("validate", "--hosts", "local", "--profile", str(profile), "--store", "none")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr == (
        f"readiness: {profile}:1: profile key 'env_prefix' must be a string, "
        "got {'dsn': 'postgresql://app:***@db/app'}\n"
    )


def _empty_map_defaults(
    node: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for key, value in node.items():
        if isinstance(value, Mapping):
            found += (
                [(*prefix, str(key))]
                if not value
                else _empty_map_defaults(value, (*prefix, str(key)))
            )
    return found


def _get(profile: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        profile = profile[key]
    return profile


@pytest.mark.parametrize("path", _empty_map_defaults(default_profile()), ids=".".join)
def test_a_map_whose_default_is_empty_takes_any_name_and_a_text_value(
    path: tuple[str, ...],
) -> None:
    """`workflow_state.headers`, `alert_delivery.receiver_headers`, ... default to `{}`: every
    name a user gave them was an unknown profile key (exit 2), so no header could be set."""
    layer = _nested(path, {"X-Tenant": "blue", "X-Api-Version": 2})
    merged = merge_layers(default_profile(), [("p.yml", layer)])
    assert _get(merged, path) == {"X-Tenant": "blue", "X-Api-Version": 2}
    for wrong in (True, ["a"], {"nested": "x"}):
        with pytest.raises(ProfileError, match=rf"'{'.'.join(path)}.X-Bad' must be a string"):
            merge_layers(default_profile(), [("p.yml", _nested(path, {"X-Bad": wrong}))])


@pytest.mark.parametrize("dotted", sorted(JSON_BODIES))
def test_a_json_body_is_taken_and_sent_as_the_last_layer_wrote_it(dotted: str) -> None:
    """A request body is the app's document: any keys (they were unknown profile keys), any
    JSON value, and never merged with the default body (its keys were added to the user's)."""
    path = tuple(dotted.split("."))
    body = {"name": "nightly", "params": {"rows": [1, 2], "dry": True}}
    merged = merge_layers(default_profile(), [("p.yml", _nested(path, body))])
    assert _get(merged, path) == body
    later = merge_layers(
        default_profile(), [("p.yml", _nested(path, body)), ("host", _nested(path, [1, "two"]))]
    )
    assert _get(later, path) == [1, "two"]


# What each kind of member (readiness.profile.SHAPES) refuses and takes; SENTINEL must never
# reach a message (a DSN's password, a header's token).
_DSN = "postgresql://u:SENTINEL-pw@db/app"
MEMBER_WRONG: dict[str, list[Any]] = {
    "a string": [5, ["SENTINEL"], {"SENTINEL": 1}, True],
    "a finite number above 0": [0, -1, float("inf"), float("nan"), True, "5", _DSN],
    "a fraction from 0 to below 1 (0.01 is 1 %)": [
        -0.1,
        1,
        1.5,
        5,
        float("nan"),
        True,
        "0.1",
        _DSN,
    ],
    "a whole number 1 or more": [0, 0.5, -1, True, "3", float("inf"), _DSN],
    "a whole number 0 or more": [-1, 0.5, True, "3", float("nan")],
    "an HTTP status code (100 to 599)": ["ok", 200.5, True, 99, 600, [200], _DSN],
    "a list of HTTP status codes (100 to 599)": [200, ["ok"], [True], [], "200", [_DSN]],
    "an HTTP status code (100 to 599) or a list of them": ["ok", True, [True], 99, [], [_DSN]],
    "a list of strings": ["SENTINEL", [1], [{"SENTINEL": 1}], {"a": "SENTINEL"}],
    "a mapping of names to strings or numbers": [
        "Bearer SENTINEL",
        {"Authorization": ["Bearer", "SENTINEL"]},
        {"X": True},
        ["SENTINEL"],
    ],
    "an argv list of strings (or one program as a string)": [{"SENTINEL": 1}, [["SENTINEL"]], 7],
    "a list": ["SENTINEL", {"SENTINEL": 1}],
    "any JSON value": [],
    "a valid regular expression": ["state=(\\w+", "(?P<state", 5, ["SENTINEL"]],
}
MEMBER_RIGHT: dict[str, Any] = {
    "a string": "x",
    "a finite number above 0": 0.5,
    "a fraction from 0 to below 1 (0.01 is 1 %)": 0.99,
    "a whole number 1 or more": 3,
    "a whole number 0 or more": 0,
    "an HTTP status code (100 to 599)": 204,
    "a list of HTTP status codes (100 to 599)": [200, 204],
    "an HTTP status code (100 to 599) or a list of them": 204,
    "a list of strings": ["a"],
    "a mapping of names to strings or numbers": {"X-Tenant": "blue", "X-Version": 2},
    "an argv list of strings (or one program as a string)": ["prog", 1],
    "a list": [],
    "any JSON value": {"a": [1, None]},
    "a valid regular expression": "state=(?P<state>\\w+)",
}


def _shape_members() -> list[tuple[str, str]]:
    from readiness.profile import SHAPES

    return [(shape, m) for shape, keys in SHAPES.items() for m in keys if not m.startswith("<")]


def _with_entry(shape: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A layer holding ``entry`` as the shaped mapping, or as the one entry of the list or
    of the open mapping."""
    if shape.endswith(".*"):
        return _layer(shape[:-2], {"some_entry": entry})
    return _layer(shape[:-2], [entry]) if shape.endswith("[]") else _layer(shape, entry)


def _minimal(shape: str) -> dict[str, Any]:
    from readiness.profile import _REQUIRED, SHAPES

    keys = SHAPES[shape]
    return {k: MEMBER_RIGHT[keys[k][0]] for k in keys.get(_REQUIRED, ())}


@pytest.mark.parametrize(("shape", "member"), _shape_members())
def test_every_member_of_a_list_entry_or_shaped_mapping_is_checked(shape: str, member: str) -> None:
    """Generated from readiness.profile.SHAPES (entries of http_benchmarks, rbac requests,
    conditional_env, drill instances, the benchmark blocks...): each member refuses the wrong
    kinds of value (a bool where a number belongs, 0.5 runs, NaN, a string where a list
    belongs) naming the indexed key, never echoing a secret, and takes a right one; a
    misspelt member is refused with a suggestion, a missing required one named."""
    from readiness.profile import SHAPES

    kind = SHAPES[shape][member][0]
    at = shape.replace("[]", "[0]").replace(".*", ".some_entry")
    defaults = default_profile()
    for wrong in MEMBER_WRONG[kind]:
        layer = _with_entry(shape, {**_minimal(shape), member: wrong})
        with pytest.raises(ProfileError) as caught:
            merge_layers(defaults, [("profile file p.yml", layer)])
        assert str(caught.value).startswith(
            f"profile file p.yml: profile key '{at}.{member}' must be {kind}, got "
        ), (wrong, str(caught.value))
        assert "SENTINEL" not in str(caught.value)
    optional = member not in _minimal(shape)
    for right in (MEMBER_RIGHT[kind], None) if optional else (MEMBER_RIGHT[kind],):
        layer = _with_entry(shape, {**_minimal(shape), member: right})
        merge_layers(defaults, [("profile file p.yml", layer)])
    typo = _with_entry(shape, {**_minimal(shape), member + "x": MEMBER_RIGHT[kind]})
    with pytest.raises(ProfileError, match=rf"unknown profile key '{re.escape(at)}\.{member}x'"):
        merge_layers(defaults, [("profile file p.yml", typo)])
    if member in _minimal(shape):
        lacking = {k: v for k, v in _minimal(shape).items() if k != member}
        with pytest.raises(ProfileError, match=rf"profile key '{re.escape(at)}' needs {member}"):
            merge_layers(defaults, [("p", _with_entry(shape, lacking))])


def _string_lists() -> list[str]:
    """Every list of names, paths or patterns: a non-empty default of strings, or declared."""
    from readiness.profile import FREE_MAPS, STRING_LISTS

    found = list(STRING_LISTS)

    def walk(node: Mapping[str, Any], path: str) -> None:
        for key, value in node.items():
            dotted = f"{path}.{key}" if path else str(key)
            if isinstance(value, dict) and dotted not in FREE_MAPS:
                walk(value, dotted)
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                found.append(dotted)

    walk(default_profile(), "")
    return sorted(found)


@pytest.mark.parametrize("dotted", _string_lists())
def test_every_list_of_names_refuses_an_item_that_is_no_string(dotted: str) -> None:
    """`required_env: [A, {B: 1}]` required a variable named "{'B': 1}"; `tls_endpoints:
    [{url: ...}]` was a host named by a mapping's text. An entry of a list of strings is
    a string."""
    defaults = default_profile()
    for wrong in ({"SENTINEL": 1}, ["nested"], 5, True, None):
        with pytest.raises(ProfileError) as caught:
            merge_layers(defaults, [("profile file p.yml", _layer(dotted, ["ok", wrong]))])
        assert str(caught.value).startswith(
            f"profile file p.yml: profile key '{dotted}[1]' must be a string, got "
        )
        assert "SENTINEL" not in str(caught.value)
    merge_layers(defaults, [("p", _layer(dotted, ["ok", "fine"]))])


BAD_MEMBERS = {
    # the colleague's reproductions: 0 runs reported as NOT_READY, a status silently ignored,
    # a traceback inside rbac; then a string iterated as characters, a misspelt key dropped
    "http_benchmark": (
        "http_benchmarks:\n  - name: h\n    url: http://127.0.0.1:9/x\n    requests: 0.5\n",
        "p.yml:4: profile key 'http_benchmarks[0].requests' must be a whole number 1 or more, "
        "got 0.5",
    ),
    "load_test": (
        "http_benchmarks: [{name: h, url: 'http://127.0.0.1:9/x', expect_status: '200'}]\n",
        "p.yml:1: profile key 'http_benchmarks[0].expect_status' must be an HTTP status code "
        "(100 to 599) or a list of them, got '200'",
    ),
    "rbac": (
        "rbac:\n  enabled: true\n  token_env: HOME\n  forbidden: [{url: 'http://127.0.0.1:9/'}]\n"
        "  allowed:\n    - url: http://127.0.0.1:9/\n      expect_status: ok\n",
        "p.yml:7: profile key 'rbac.allowed[0].expect_status' must be an HTTP status code "
        "(100 to 599) or a list of them, got 'ok'",
    ),
    "environment": (
        "conditional_env:\n  - {when: auth.enabled, require: MAHAVISHNU_X}\n",
        "p.yml:2: profile key 'conditional_env[0].require' must be a list of strings, got a string",
    ),
    # an internal error (float('30s')), a check that failed to run (the regex), a
    # misspelt timeout silently ignored
    "workflow_execution": (
        'smoke_workflow:\n  command: [/bin/echo, \'{"state": "completed"}\']\n  timeout_s: 30s\n',
        "p.yml:3: profile key 'smoke_workflow.timeout_s' must be a finite number above 0, "
        "got '30s'",
    ),
    "workflow_execution_regex": (
        "smoke_workflow: {command: [/bin/echo, state=completed], state_regex: 'state=(\\w+'}\n",
        "p.yml:1: profile key 'smoke_workflow.state_regex' must be a valid regular "
        "expression, got 'state=(\\\\w+'",
    ),
    "workflow_execution_typo": (
        'smoke_workflow: {command: [/bin/echo, \'{"state": "completed"}\'], timout_s: 1}\n',
        "p.yml:1: unknown profile key 'smoke_workflow.timout_s' (did you mean 'timeout_s'?)",
    ),
    # a misspelt rule key silently ignored (the default status judged instead)
    "adapter_health": (
        "adapter_health:\n  prefect:\n    expect_stauts: [500]\n",
        "p.yml:3: unknown profile key 'adapter_health.prefect.expect_stauts' (did you mean "
        "'expect_status'?)",
    ),
    # a pattern that does not compile was each host's NOT_READY; a 0 that meant the default
    "backup_restore": (
        "app_name: x\nbackup_schedule_pattern: 'backup|('\n",
        "p.yml:2: profile key 'backup_schedule_pattern' must be a valid regular expression, "
        "got 'backup|('",
    ),
    "backup_roundtrip": (
        "backup_roundtrip: {max_tables: 0}\n",
        "p.yml:1: profile key 'backup_roundtrip.max_tables' must be a number above 0, got 0",
    ),
    # a fraction meant as a percentage: 5 (5 %) and 1 (1 %) took every request failing,
    # 0.5 (meant as 50 % slower) flagged every run not twice as fast as the one before
    "http_benchmark_threshold": (
        "thresholds: {http_max_error_rate: 5}\n",
        "p.yml:1: profile key 'thresholds.http_max_error_rate' must be a fraction from 0 to "
        "below 1 (0.01 is 1 %), got 5",
    ),
    "http_benchmark_rate": (
        "http_benchmarks: [{url: 'http://127.0.0.1:9/', max_error_rate: 1}]\n",
        "p.yml:1: profile key 'http_benchmarks[0].max_error_rate' must be a fraction from 0 to "
        "below 1 (0.01 is 1 %), got 1",
    ),
    "http_benchmark_regression": (
        "thresholds: {benchmark_max_regression: 0.5}\n",
        "p.yml:1: profile key 'thresholds.benchmark_max_regression' must be a ratio 1 or more "
        "(1.5: p95 may grow by half), got 0.5",
    ),
    # a count the check cuts with int(): 40.5 passed a 40-character secret, 2.9 took 2 retries
    "configuration_threshold": (
        "thresholds: {secret_min_length: 40.5}\n",
        "p.yml:1: profile key 'thresholds.secret_min_length' must be a whole number 0 or more, "
        "got 40.5",
    ),
    "error_handling_threshold": (
        "thresholds: {retry_min_attempts: 2.9}\n",
        "p.yml:1: profile key 'thresholds.retry_min_attempts' must be a whole number 0 or more, "
        "got 2.9",
    ),
    "rbac_typo": (
        "rbac:\n  enabled: true\n  forbidden:\n    - {method: DELETE, ur: 'http://x/'}\n",
        "p.yml:4: unknown profile key 'rbac.forbidden[0].ur' (did you mean 'url'?)",
    ),
}


def test_a_bad_member_is_one_line_and_exit_two_before_any_check_runs(tmp_path: Path) -> None:
    """Through the real `readiness validate --profile F -c CHECK` on a local inventory."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.services.apps import write_app
    from tests.services.cli import local_inventory, run_cli

    inventory = local_inventory(tmp_path / "inv.yml", write_app(tmp_path / "app"))

    def run_one(case: str) -> tuple[str, Any]:
        (tmp_path / case).mkdir()
        profile = tmp_path / case / "p.yml"
        profile.write_text(BAD_MEMBERS[case][0], encoding="utf-8")
        check = case
        for suffix in ("_typo", "_regex", "_threshold", "_rate", "_regression"):
            check = check.removesuffix(suffix)
        argv = ["validate", "-i", str(inventory), "-c", check, "--profile", str(profile)]
        return case, run_cli(*argv, "--store", "none")

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(run_one, BAD_MEMBERS))
    for case, res in results:
        assert res.returncode == 2, (case, res.stdout, res.stderr)
        assert res.stderr.strip().endswith(BAD_MEMBERS[case][1]), (case, res.stderr)
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
        assert res.stdout == "", (case, res.stdout)


def _word_layer(dotted: str, value: Any) -> dict[str, Any]:
    return _layer(dotted.replace(".*", ".some_setting"), value)


@pytest.mark.parametrize("dotted", sorted(WORDS))
def test_a_word_valued_key_takes_its_words_and_refuses_any_other(dotted: str) -> None:
    """Generated from readiness.profile.WORDS: each word (as the check folds it) is taken,
    a misspelling is refused with the key and the word, a DSN's password masked."""
    wanted, words, fold = WORDS[dotted]
    defaults = default_profile()
    for word in words:
        merge_layers(defaults, [("p", _word_layer(dotted, word))])
    if fold is not str:  # the check folds the case (and, for service_access, spaces)
        merge_layers(defaults, [("p", _word_layer(dotted, f" {words[0].swapcase()} ".strip()))])
    shown = dotted.replace(".*", ".some_setting")
    for wrong in (words[0] + "x", "postgresql://u:SENTINEL@db/x"):
        with pytest.raises(ProfileError) as caught:
            merge_layers(defaults, [("profile file p.yml", _word_layer(dotted, wrong))])
        assert str(caught.value).startswith(
            f"profile file p.yml: profile key '{shown}' must be {wanted}, got "
        )
        assert "SENTINEL" not in str(caught.value)


def test_the_words_are_those_the_checks_read() -> None:
    from readiness.checks import _access, config_validity

    assert WORDS["service_access"][1] == _access.MODES
    assert set(WORDS["setting_types.*"][1]) == set(config_validity._TYPES)


def test_a_misspelt_service_access_is_refused_not_every_service_not_ready(
    tmp_path: Path,
) -> None:
    """`service_access: tunel` exited 1 with "Prometheus at ... is not ready (service_access
    must be one of ...)" in monitoring, and the same in every check reaching a service."""
    from tests.services.apps import write_app
    from tests.services.cli import local_inventory, run_cli

    inventory = local_inventory(tmp_path / "inv.yml", write_app(tmp_path / "app"))
    profile = tmp_path / "p.yml"
    profile.write_text("app_name: x\nservice_access: tunel\n", encoding="utf-8")
    argv = ["validate", "-i", str(inventory), "-c", "monitoring", "--profile", str(profile)]
    res = run_cli(*argv, "--store", "none")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stderr == (
        f"readiness: {profile}:2: profile key 'service_access' must be one of auto, direct, "
        "ssh, got 'tunel'\n"
    )


@pytest.mark.parametrize("dotted", sorted(REGEX_KEYS))
def test_a_regular_expression_key_refuses_one_that_does_not_compile(dotted: str) -> None:
    """`backup_schedule_pattern: 'backup|('` was each host's NOT_READY finding."""
    defaults = default_profile()
    with pytest.raises(ProfileError, match=rf"'{dotted}' must be a valid regular expression"):
        merge_layers(defaults, [("profile file p.yml", _layer(dotted, "backup|("))])
    merge_layers(defaults, [("p", _layer(dotted, r"backup|\bpg_dump\b"))])
    merge_layers(defaults, [("p", _layer(dotted, None))])


def _bound_cases() -> list[tuple[str, str, str]]:
    """Every (dotted parent, low, high) of readiness.profile.BOUNDS, "MAP.*" at each entry."""
    from readiness.profile import BOUNDS

    cases = []
    for parent, low, high in BOUNDS:
        if parent.endswith(".*"):
            root = parent.removesuffix(".*")
            cases += [(f"{root}.{entry}", low, high) for entry in default_profile()[root]]
        else:
            cases.append((parent, low, high))
    return cases


@pytest.mark.parametrize(("path", "low", "high"), _bound_cases())
def test_a_lower_bound_above_its_upper_bound_is_refused(path: str, low: str, high: str) -> None:
    """`retry_min_attempts: 5` with `retry_max_attempts: 3` made every app NOT_READY; a
    resource range with min above max was each host's broken rule. Judged on the merged
    layers (a profile file's low against the inventory's high), naming the last writer."""
    defaults = default_profile()
    base = merge_layers(defaults, []).get_path(path)
    hi = base[high]
    swapped = _layer(path, {low: hi + 1, high: hi})
    with pytest.raises(ProfileError) as caught:
        merge_layers(defaults, [("profile file p.yml", swapped)])
    assert str(caught.value) == (
        f"profile file p.yml: profile key '{path}.{low}' ({hi + 1}) must not be above "
        f"'{path}.{high}' ({hi})"
    )
    layers = [  # within each key's own range (retry_max_attempts is 1 or more)
        ("profile file p.yml", _layer(path, {low: hi})),
        ("host web", _layer(path, {high: hi - 1})),
    ]
    with pytest.raises(ProfileError, match=rf"^host web: profile key '{re.escape(path)}\.{low}'"):
        merge_layers(defaults, layers)
    merge_layers(defaults, [("p", _layer(path, {low: hi, high: hi}))])  # equal is a range


def test_swapped_retry_bounds_are_one_line_and_exit_two(tmp_path: Path) -> None:
    from tests.services.apps import write_app
    from tests.services.cli import local_inventory, run_cli

    inventory = local_inventory(tmp_path / "inv.yml", write_app(tmp_path / "app"))
    profile = tmp_path / "p.yml"
    profile.write_text(
        "thresholds:\n  retry_min_attempts: 5\n  retry_max_attempts: 3\n", encoding="utf-8"
    )
    argv = ["validate", "-i", str(inventory), "-c", "error_handling", "--profile", str(profile)]
    res = run_cli(*argv, "--store", "none")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stderr == (
        f"readiness: {profile}:2: profile key 'thresholds.retry_min_attempts' (5) must not be "
        "above 'thresholds.retry_max_attempts' (3)\n"
    )


@pytest.mark.parametrize("dotted", sorted(WHOLE_AT_LEAST))
def test_a_whole_count_refuses_a_fraction_and_a_value_below_its_least(
    dotted: str, tmp_path: Path
) -> None:
    """`remediate_keep_backups: 0` (or 2.5) passed `validate --profile` and was refused
    only by `remediate`, with no file:line; now by every command that takes the profile."""
    from tests.services.apps import write_app
    from tests.services.cli import local_inventory, run_cli

    least = WHOLE_AT_LEAST[dotted]
    defaults = default_profile()
    for wrong in (least - 1, least + 0.5):
        with pytest.raises(ProfileError, match=rf"must be a whole number {least} or more"):
            merge_layers(defaults, [("profile file p.yml", _layer(dotted, wrong))])
    merge_layers(defaults, [("p", _layer(dotted, least))])
    inventory = local_inventory(tmp_path / "inv.yml", write_app(tmp_path / "app"))
    profile = tmp_path / "p.yml"
    *parents, key = dotted.split(".")  # `thresholds.x` is written nested, as a user does
    lines = ["app_name: x"] + [f"{'  ' * i}{p}:" for i, p in enumerate(parents)]
    lines.append(f"{'  ' * len(parents)}{key}: {least - 1}")
    profile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["-i", str(inventory), "-c", "environment", "--profile", str(profile)]
    res = run_cli("validate", *argv, "--store", "none")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stderr == (
        f"readiness: {profile}:{len(lines)}: profile key '{dotted}' must be a whole number "
        f"{least} or more, got {least - 1}\n"
    )
