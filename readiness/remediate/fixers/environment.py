"""``environment``: a missing or insecure JWT secret gets a strong one, generated on the host.

Only the JWT secret (``auth.secret``): other secrets (database passwords, tokens)
are shared with other systems, and a new random value would break them.
"""

from __future__ import annotations

import io

from dotenv import dotenv_values

from ...profile import Profile
from ..plan import Fix, SetEnvVar, sha256_text
from . import FixInput, fixer, hard_link_refusal


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
    notes = [f"once a new secret is in {env_file}, restart the service to use it"]
    if state.cannot_rewrite:
        notes = [f"will be refused: {state.cannot_rewrite}"]
    elif state.kind == "file" and state.nlink > 1:
        notes = [f"will be refused: {hard_link_refusal(state)}"]
    elif state.exists and state.kind != "file":
        # A symlinked env file (current/.env -> shared/.env) is never written through:
        # the applier refuses it, and the dry run says so up front (docs/security.md).
        what = "a symlink" if state.kind == "link" else f"not a regular file ({state.kind})"
        notes = [
            f"will be refused: {env_file} is {what}; point env_file at the real file "
            "so readiness can edit it"
        ]
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
