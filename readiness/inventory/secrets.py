"""Which inventory variables hold secrets, and their values (to mask them in any text).

``ansible_password``, ``ansible_become_pass``, ``vault_*``... are shown masked by
``readiness inventory --vars``; their values are also masked wherever else they could appear:
a host's ssh arguments end up in an "unreachable" reason (``-o ProxyCommand='sshpass -p …'``),
which validate, remediate and ``readiness inventory`` print, save and record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..redact import is_secret_name

__all__ = [
    "PATH_VAR",
    "SECRET_VAR",
    "hosts_secrets",
    "is_secret_var",
    "quotable",
    "secret_values",
]

# Variable names whose values are secrets (ansible_password, ansible_become_pass, vault_*...);
# names ending in _file/_path hold a path to the secret, which is safe to show.
SECRET_VAR = re.compile(
    r"pass(word|wd|phrase)?$|password|secret|token|api_?key|credential|^vault_|_pass_", re.I
)
PATH_VAR = re.compile(r"_(file|path|dir)$", re.I)


def is_secret_var(name: str) -> bool:
    """Whether an inventory variable (or a key nested in one) names a secret value."""
    return not PATH_VAR.search(name) and bool(SECRET_VAR.search(name) or is_secret_name(name))


def secret_values(variables: Mapping[str, Any] | None) -> list[str]:
    """Every value held under a secret name in ``variables``, at any depth, as text (a
    numeric password is a secret too)."""
    return list(_walk(variables or {}, secret=False))


def hosts_secrets(hosts: Iterable[Any]) -> list[str]:
    """:func:`secret_values` of every host's inventory variables, for a run's redactor."""
    return [value for host in hosts for value in secret_values(getattr(host, "vars", None))]


def _walk(node: Any, *, secret: bool) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk(value, secret=secret or is_secret_var(str(key)))
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _walk(value, secret=secret)
    elif secret and node is not None and not isinstance(node, bool):
        yield str(node)


_WORD = re.compile(r"[A-Za-z_][\w.-]*")


def quotable(line: str) -> str:
    """``line`` as an error message may quote it: cut after the first word that names a
    secret (``ansible_password="unterminated…`` shows ``ansible_password…``), whole otherwise."""
    for word in _WORD.finditer(line):
        if is_secret_var(word.group()):
            return line[: word.end()] + "…"
    return line
