"""``environment``: a missing or insecure JWT secret gets a strong one, generated on the host.

Only the JWT secret (``auth.secret``): other secrets (database passwords, tokens)
are shared with other systems, and a new random value would break them.
"""

from __future__ import annotations

import io

from dotenv import dotenv_values

from ...profile import Profile
from ..plan import FileState, Fix, SetEnvVar, sha256_text
from . import FixInput, fixer, hard_link_refusal, link_refusal


def _env_file(profile: Profile) -> str | None:
    return profile.path_of("env_file")


def jwt_name(profile: Profile) -> str:
    delim = str(profile.get("env_nested_delimiter") or "__")
    return f"{profile.get('env_prefix') or ''}AUTH{delim}SECRET"


@fixer(
    "environment",
    summary="generate a strong JWT secret into the env file when it is missing or insecure",
    reads=lambda p: [f for f in [_env_file(p)] if f],
)
def fix(inp: FixInput) -> Fix | None:
    name = jwt_name(inp.profile)
    env_file = _env_file(inp.profile)
    details = inp.result.details
    bad = name in (details.get("missing") or ()) or name in (details.get("insecure") or ())
    if not bad or not env_file:
        return None
    state = inp.file(env_file)
    current = None
    if state.text is not None:
        current = dotenv_values(stream=io.StringIO(state.text)).get(name)
    change = SetEnvVar(
        env_file,
        name,
        sha256_text(current) if current else None,
        current_mode=state.mode if state.exists and state.kind == "file" else None,
    )
    addresses = [p for p in inp.findings if p.startswith(f"{name} ")]
    refusal = _refusal(state, env_file)
    if refusal:  # refused in the plan, as every fixer does: nothing planned to change
        return Fix("environment", f"generate a new {name}", (), (), (refusal,))
    notes = [f"once a new secret is in {env_file}, restart the service to use it"]
    return Fix(
        "environment",
        f"generate a new {name}",
        (change,),
        tuple(addresses),
        tuple(notes),
        restart_needed=True,
        # The finding names where the value comes from, which the fix itself can change
        # (env file before, the process environment after): match on the problem alone.
        addresses_containing=(f"{name} is not set", f"{name} uses an insecure default"),
    )


def _refusal(state: FileState, env_file: str) -> str | None:
    """Why the applier will not rewrite the env file (``refused: ...``), or None."""
    if state.cannot_rewrite:
        return f"refused: {state.cannot_rewrite}"
    if state.kind == "file" and state.nlink > 1:
        return f"refused: {hard_link_refusal(state)}"
    if state.kind == "refused":  # the applier could not reach it safely: its reason
        return link_refusal(state, "edit the env file")
    if state.exists and state.kind != "file":
        # A symlinked env file (current/.env -> shared/.env) is never written through
        # (docs/security.md).
        what = "a symlink" if state.kind == "link" else f"not a regular file ({state.kind})"
        return (
            f"refused: {env_file} is {what}; point env_file at the real file so readiness "
            "can edit it"
        )
    return None
