"""Random but valid Ansible inventories and host patterns, from a seed.

The generator knows nothing of what Ansible makes of its output: values are written as text
(INI and YAML literals of every kind) and both Ansible and readiness read them. It only keeps
the inventory inside what readiness documents as the same as Ansible (docs/inventories.md,
"Unlike Ansible"): no two different inline addresses for one host, no variables on a host that
is also a group, no ``{{ inventory_dir }}``, no ``readiness`` dict, no out-of-order slices.
"""

from __future__ import annotations

import fnmatch
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

GROUP_NAMES = (
    "web", "db", "app", "cache", "eu", "us", "canary", "prod", "lb", "mon", "Web2", "db_main",
    "a1", "zeta", "webapp", "dbx",
)  # fmt: skip
UNKNOWN_TERMS = ("nosuch", "zz*", "~nomatch", "wbe")

# Values as written after `key=` on an INI host line (split like a shell line by both).
INI_HOST_VALUES = (
    "42", '"42"', "'\"42\"'", "True", "true", "yes", "0x1F", "1.5", "1_000", "0644", "None",
    "[1,2]", '"[1, 2]"', "\"{'a': 1}\"", '"hello world"', "a#b", '"a#b"', "-5", '"(1,2)"',
    "1e3", "inf", "\"'q'\"", '""', "x=y", "0o17", "False", "null", "'{\"k\": [1]}'",
)  # fmt: skip
# Values as written after `key =` in an INI [group:vars] section (the rest of the line).
INI_VARS_VALUES = (
    "42", '"42"', "hello world", "[1, 2]", "{'a': 1}", "1.5", "yes", "True", "a # b",
    "5 # five", "'quoted'", "None", "0o17", "-3", "(1, 2)", '"x" "y"', "2001-12-14", "0644",
)  # fmt: skip
# YAML scalars and collections (YAML 1.1 as PyYAML and Ansible resolve them).
YAML_VALUES = (
    "42", '"42"', "yes", "on", "~", "1e3", "1.0e+3", "0o17", "017", "0x1F", "1_000", "12:30",
    "[1, 2]", "{a: 1, b: [x]}", "hello world", "'x: y'", "2001-12-14", "-.5", "!!str 5", "true",
    "null", '""', "no", "+12", "0b101", "'#not a comment'",
    '!vault "$ANSIBLE_VAULT;1.1;AES256\\n62313365396662343061393464336163"', "!unsafe '{{ x }}'",
)  # fmt: skip
ORDINARY_VARS = ("color", "tier", "n", "flag", "data")
USERS = ("deploy", "admin", "ops")
KEY_FILES = ("~/.ssh/id_a", "/keys/b", "keys/c")
INTERPRETERS = ("/usr/bin/python3", "auto_silent", "/opt/py/bin/python")
PORTS = ("2200", "2201", '"2202"')


@dataclass
class HostEntry:
    """One host line / YAML host key: ``text`` expands to ``names``."""

    text: str
    names: list[str]
    vars: dict[str, str] = field(default_factory=dict)  # name -> literal text


@dataclass
class GenGroup:
    name: str
    entries: list[HostEntry] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, str] = field(default_factory=dict)


@dataclass
class GenCase:
    seed: int
    files: dict[str, str]  # relative path -> text ("" for an empty directory: name ends in /)
    inventory: list[str]  # relative paths given with -i
    groups: dict[str, GenGroup]
    hosts: list[str]  # every host name
    patterns: list[str]
    limits: list[tuple[str, list[str]]]  # (limit, patterns under it)
    unknown: frozenset[str]  # terms that name nothing (readiness refuses them)
    ambiguous: frozenset[str]  # groups whose host order Ansible does not fix

    def exact_order(self, pattern: str) -> bool:
        """Whether Ansible's own order for ``pattern`` is fixed (no ambiguous group matched)."""
        terms = [term for term in _terms(pattern) if term[0] not in "&!"] or ["all"]
        return not any(self._touches_ambiguous(term) for term in terms)

    def _touches_ambiguous(self, term: str) -> bool:
        """A union term whose hosts come from a group Ansible walks in no fixed order
        (``&``/``!`` terms only filter, and subscripts are only put on fixed groups)."""
        if term[0] in "&!" or term in self.hosts:
            return False
        expr = _SUBSCRIPT.sub("", term)
        return any(_matches(expr, group) for group in self.ambiguous)


_PLAIN_KEY = re.compile(r"[A-Za-z][\w.-]*")  # a host name YAML reads as a string unquoted
_SUBSCRIPT = re.compile(r"\[(-?\d+|\d+[:-]\d*)\]$")


def _terms(pattern: str) -> list[str]:
    if "," in pattern:
        return [term.strip() for term in pattern.split(",") if term.strip()]
    return re.findall(r"(?:[^\s:\[\]]|\[[^\]]*\])+", pattern) if ":" in pattern else [pattern]


def _matches(expr: str, name: str) -> bool:
    if expr.startswith("~"):
        try:
            return re.match(expr[1:], name) is not None
        except re.error:
            return False
    return re.match(fnmatch.translate(expr), name) is not None


class Generator:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.groups: dict[str, GenGroup] = {}
        self.host_names: dict[str, None] = {}
        self.addresses: dict[str, dict[str, str]] = {}  # host -> its one inline address set
        self._counter = 0
        self.under_all: set[str] = set()  # groups written under all: children: in YAML

    # -- structure -----------------------------------------------------------------------
    def case(self) -> GenCase:
        rng = self.rng
        names = rng.sample(GROUP_NAMES, rng.randint(2, 7))
        self.groups = {name: GenGroup(name) for name in names}
        chain = rng.random() < 0.5  # only one group per level has children: a fixed order
        spine = names[: rng.randint(1, len(names))] if chain else names
        for index, name in enumerate(names):
            later = names[index + 1 :]
            if not later or (chain and name not in spine):
                continue
            if chain:
                following = spine[spine.index(name) + 1 : spine.index(name) + 2]
                leaves = [n for n in later if n not in spine]
                pool = following + rng.sample(leaves, min(len(leaves), rng.randint(0, 2)))
            else:
                pool = rng.sample(later, min(len(later), rng.randint(0, 2)))
            self.groups[name].children = pool
        for group in self.groups.values():
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                group.entries.append(self._entry())
            if rng.random() < 0.5:
                group.vars = self._vars(rng.randint(1, 3), group=True)
            if rng.random() < 0.25:
                group.vars["ansible_group_priority"] = rng.choice(("1", "2", "3", "5", "10"))
        self._reuse_entries()
        self._collision()
        ungrouped = [self._entry() for _ in range(rng.choice((0, 0, 1, 2)))]
        all_vars = self._vars(rng.randint(0, 2), group=True)
        files, inventory = self._layout(ungrouped, all_vars)
        hosts = list(self.host_names)
        ambiguous = frozenset(g for g in ["all", *self.groups] if self._ambiguous_walk(g))
        patterns, unknown = self._patterns(hosts, ambiguous)
        return GenCase(
            seed=self.seed,
            files=files,
            inventory=inventory,
            groups=self.groups,
            hosts=hosts,
            patterns=patterns,
            limits=self._limits(hosts, ambiguous, files),
            unknown=frozenset(unknown),
            ambiguous=ambiguous,
        )

    def _children_of(self, group: str) -> list[str]:
        if group == "all":
            adopted = {c for g in self.groups.values() for c in g.children}
            # a group written under `all: children:` is a child of all besides its parents
            top = [g for g in self.groups if g not in adopted or g in self.under_all]
            return ["ungrouped", *top]
        return self.groups[group].children if group in self.groups else []

    def _ambiguous_walk(self, group: str) -> bool:
        """Ansible walks a group's descendants level by level over a *set* of groups: when two
        groups of one level both bring new children, their order is not fixed."""
        seen: set[str] = set()
        level = {group, *self._children_of(group)}
        while level:
            seen |= level
            bringing = [g for g in level if any(c not in seen for c in self._children_of(g))]
            if len(bringing) > 1:
                return True
            level = {c for g in level for c in self._children_of(g)} - seen
        return False

    def _entry(self) -> HostEntry:
        rng = self.rng
        kind = rng.choice(("plain", "plain", "plain", "range", "letters", "ip", "ipv6", "port"))
        self._counter += 1
        n = self._counter
        if kind == "range":
            width = rng.choice((1, 2))
            start = rng.randint(0, 2)
            end = start + rng.randint(1, 3)
            step = rng.choice(("", "", ":2"))
            stem = rng.choice(("web", "db", "node", "h"))
            first = "" if start == 0 and width == 1 and rng.random() < 0.3 else f"{start:0{width}d}"
            text = f"{stem}{n}-[{first}:{end:0{width}d}{step}]"
            numbers = range(start, end + 1, 2 if step else 1)
            names = [f"{stem}{n}-{i:0{width}d}" for i in numbers]
        elif kind == "letters":
            first, last = rng.choice((("a", "c"), ("x", "z"), ("a", "e")))
            step = rng.choice(("", ":2"))
            text = f"node{n}[{first}:{last}{step}]"
            letters = "abcdefghijklmnopqrstuvwxyz"
            chosen = letters[letters.index(first) : letters.index(last) + 1 : 2 if step else 1]
            names = [f"node{n}{c}" for c in chosen]
        elif kind == "ip":
            text = f"10.1.0.{n}"
            names = [text]
        elif kind == "ipv6":
            with_port = rng.random() < 0.5
            name = f"fe80::{n}"
            text = f"[{name}]:22{n % 10}0" if with_port else name
            names = [name]
        elif kind == "port":
            name = rng.choice(("api", "svc", "Mon")) + f"{n}.example.com"
            text = f"{name}:{rng.choice(('2222', '2200', '22'))}"
            names = [name]
        else:
            name = rng.choice(("web", "db", "app", "cache", "lb", "x")) + str(n)
            text, names = name, [name]
        entry = HostEntry(text, names)
        for name in names:
            self.host_names.setdefault(name, None)
        if rng.random() < 0.6:
            entry.vars = self._vars(rng.randint(1, 4), group=False, hosts=names)
        return entry

    def _reuse_entries(self) -> None:
        """Some hosts appear in several groups (the port or vars of a later line may differ)."""
        rng = self.rng
        entries = [e for g in self.groups.values() for e in g.entries]
        for group in self.groups.values():
            if entries and rng.random() < 0.4:
                entry = rng.choice(entries)
                if any(e.names == entry.names for e in group.entries):
                    continue  # the same key twice in one YAML mapping is a documented refusal
                again = HostEntry(entry.text, entry.names)
                if rng.random() < 0.5:
                    again.vars = self._vars(rng.randint(1, 2), group=False, hosts=entry.names)
                if entry.text.count(":") == 1 and "[" not in entry.text and rng.random() < 0.5:
                    again.text = entry.text.rsplit(":", 1)[0] + ":4444"
                group.entries.append(again)

    def _collision(self) -> None:
        """Now and then a host named like a group (without variables: see Unlike Ansible)."""
        if self.rng.random() < 0.2 and len(self.groups) > 1:
            name = self.rng.choice(list(self.groups))
            target = self.rng.choice([g for g in self.groups.values() if g.name != name])
            target.entries.append(HostEntry(name, [name]))
            self.host_names.setdefault(name, None)

    def _vars(self, count: int, *, group: bool, hosts: list[str] | None = None) -> dict[str, str]:
        rng = self.rng
        values: dict[str, str] = {}
        for _ in range(count):
            kind = rng.choice(("ordinary", "ordinary", "conn", "conn", "addr"))
            if kind == "ordinary":
                values[rng.choice(ORDINARY_VARS)] = "\0value"  # a literal picked per format
            elif kind == "conn":
                key = rng.choice(
                    (
                        "ansible_port", "ansible_ssh_port", "ansible_user", "ansible_ssh_user",
                        "ansible_ssh_private_key_file", "ansible_private_key_file",
                        "ansible_python_interpreter",
                    )
                )  # fmt: skip
                values[key] = self._connection_value(key)
            elif group or (hosts and len(hosts) == 1):
                values.update(self._address(None if group else hosts[0] if hosts else None))
        return values

    def _connection_value(self, key: str) -> str:
        rng = self.rng
        if key.endswith("port"):
            return rng.choice(PORTS)
        if key.endswith("user"):
            return rng.choice(USERS)
        if key.endswith("key_file"):
            return rng.choice(KEY_FILES)
        return rng.choice(INTERPRETERS)

    def _address(self, host: str | None) -> dict[str, str]:
        """Loopback addresses only (nothing connects: they are data). A host keeps one inline
        address set: two different ones are a documented refusal."""
        rng = self.rng
        made = {}
        for key in ("ansible_host", "ansible_ssh_host"):
            if rng.random() < 0.6:
                made[key] = f"127.0.{rng.randint(0, 3)}.{rng.randint(1, 9)}"
        made = made or {"ansible_host": f"127.0.9.{rng.randint(1, 9)}"}
        if host is None:
            return made
        return self.addresses.setdefault(host, made)

    # -- files ---------------------------------------------------------------------------
    def _layout(
        self, ungrouped: list[HostEntry], all_vars: dict[str, str]
    ) -> tuple[dict[str, str], list[str]]:
        rng = self.rng
        kind = rng.choice(("ini", "yaml", "dir", "dir", "two"))
        order = list(self.groups)
        if kind in ("ini", "yaml"):
            parts = [order]
        else:
            cut = rng.randint(0, len(order))
            parts = [order[:cut], order[cut:]]
        formats = [kind if kind in ("ini", "yaml") else rng.choice(("ini", "yaml")) for _ in parts]
        files: dict[str, str] = {}
        inventory: list[str] = []
        bases = [""] if kind != "two" else ["one/", "two/"]
        declared: set[str] = set()
        for index, (names, fmt) in enumerate(zip(parts, formats, strict=True)):
            extra = ungrouped if index == 0 else []
            all_here = all_vars if index == len(parts) - 1 else {}
            if fmt == "ini":
                text = self._ini(names, extra, all_here, declared)
                name = rng.choice(("hosts", "inv.ini", "prod"))
            else:
                text = self._yaml(names, extra, all_here)
                name = rng.choice(("inv.yml", "inv.yaml", "hosts.yml"))
            declared |= set(names)
            if kind == "dir":
                path = f"inv/{index}{name}"
            elif kind == "two":
                path = f"{bases[index]}{name}"
            else:
                path = name
            files[path] = text
            if kind != "dir":
                inventory.append(path)
        if kind == "dir":
            inventory = ["inv"]
            if rng.random() < 0.5:
                files["inv/notes.txt"] = "[not an inventory\n"
                files["inv/old.cfg"] = "[broken\n"
        vars_roots = {"dir": ["inv/"], "two": bases}.get(kind, [""])
        for root in vars_roots:
            files.update(self._vars_files(root))
        return files, inventory

    def _literal(self, fmt: str, key: str, text: str) -> str:
        if text != "\0value":
            return text
        pool = {"ini-host": INI_HOST_VALUES, "ini-vars": INI_VARS_VALUES}.get(fmt, YAML_VALUES)
        return self.rng.choice(pool)

    def _ini(
        self,
        names: list[str],
        ungrouped: list[HostEntry],
        all_vars: dict[str, str],
        declared: set[str],
    ) -> str:
        rng = self.rng
        lines = [self._ini_host(entry) for entry in ungrouped]
        if ungrouped and rng.random() < 0.3:  # the same hosts under an explicit [ungrouped]
            lines += ["[ungrouped]", *(self._ini_host(entry) for entry in ungrouped)]
        if rng.random() < 0.2:
            lines.append(rng.choice(("; a comment", "# a comment", "  ")))
        here = set(names) | declared
        for name in names:
            group = self.groups[name]
            lines.append(f"[{name}]" + rng.choice(("", "", " # section")))
            lines += [self._ini_host(entry) for entry in group.entries]
            if group.vars:
                lines.append(f"[{name}:vars]")
                lines += [self._ini_var(k, v) for k, v in group.vars.items()]
        for name in names:
            children = self.groups[name].children
            if not children:
                continue
            for child in children:
                if child not in here:  # declared further on: an empty section declares it
                    lines.append(f"[{child}]")
                    here.add(child)
            lines.append(f"[{name}:children]")
            lines += children
        if all_vars:
            lines.append("[all:vars]")
            lines += [self._ini_var(k, v) for k, v in all_vars.items()]
        return "\n".join(lines) + "\n"

    def _ini_host(self, entry: HostEntry) -> str:
        parts = [entry.text]
        parts += [f"{k}={self._literal('ini-host', k, v)}" for k, v in entry.vars.items()]
        indent = self.rng.choice(("", "", "", "  "))
        comment = self.rng.choice(("", "", "", "  # trailing comment"))
        return indent + " ".join(parts) + comment

    def _ini_var(self, key: str, value: str) -> str:
        spacing = self.rng.choice(("=", " = ", "= "))
        return f"{key}{spacing}{self._literal('ini-vars', key, value)}"

    def _yaml(self, names: list[str], ungrouped: list[HostEntry], all_vars: dict[str, str]) -> str:
        lines: list[str] = []
        nested = self._nested(names)
        top = [name for name in names if name not in nested]
        wrap = bool(top) and self.rng.random() < 0.4  # all: children: {...} around the groups
        if ungrouped or all_vars or wrap:
            lines.append("all:")
            if all_vars:
                lines.append("  vars:")
                lines += self._yaml_vars(all_vars, 4)
            if ungrouped:
                lines.append("  hosts:")
                lines += self._yaml_hosts(ungrouped, 4)
            if wrap:
                lines.append("  children:")
                self.under_all.update(top)
        for name in top:
            lines += self._yaml_group(name, 4 if wrap else 0, names, nested)
        return "\n".join(lines) + "\n"

    def _nested(self, names: list[str]) -> set[str]:
        """Groups written inside their only parent (the rest are written at the top)."""
        parents: dict[str, list[str]] = {}
        for name in names:
            for child in self.groups[name].children:
                parents.setdefault(child, []).append(name)
        return {
            child
            for child, of in parents.items()
            if len(of) == 1 and child in names and self.rng.random() < 0.6
        }

    def _yaml_group(self, name: str, indent: int, names: list[str], nested: set[str]) -> list[str]:
        pad = " " * indent
        group = self.groups[name]
        lines = [f"{pad}{name}:"]
        if group.vars:
            lines.append(f"{pad}  vars:")
            lines += self._yaml_vars(group.vars, indent + 4)
        if len(group.entries) == 1 and not group.entries[0].vars and self.rng.random() < 0.3:
            lines.append(f"{pad}  hosts: '{group.entries[0].text}'")  # one host, as a string
        elif group.entries:
            lines.append(f"{pad}  hosts:")
            lines += self._yaml_hosts(group.entries, indent + 4)
        children = group.children
        if len(children) == 1 and children[0] not in nested and self.rng.random() < 0.3:
            lines.append(f"{pad}  children: {children[0]}")  # one child, as a string
        elif children:
            lines.append(f"{pad}  children:")
            for child in children:
                if child in nested:
                    lines += self._yaml_group(child, indent + 4, names, nested)
                else:
                    lines.append(f"{pad}    {child}:")
        return lines

    def _yaml_hosts(self, entries: list[HostEntry], indent: int) -> list[str]:
        pad = " " * indent
        lines: list[str] = []
        for entry in entries:
            plain = _PLAIN_KEY.fullmatch(entry.text) and self.rng.random() < 0.5
            lines.append(f"{pad}{entry.text}:" if plain else f"{pad}'{entry.text}':")
            lines += self._yaml_vars(entry.vars, indent + 2)
        return lines

    def _yaml_vars(self, values: Mapping[str, str], indent: int) -> list[str]:
        pad = " " * indent
        return [f"{pad}{k}: {self._literal('yaml', k, v)}" for k, v in values.items()]

    def _vars_files(self, root: str) -> dict[str, str]:
        rng = self.rng
        files: dict[str, str] = {}
        targets = [("group_vars", g) for g in ["all", *self.groups] if rng.random() < 0.35]
        targets += [("host_vars", h) for h in self.host_names if rng.random() < 0.15]
        for kind, name in targets:
            if ":" in name:  # an IPv6 host: a file name with ':' is fine, but keep it simple
                continue
            values = self._vars(rng.randint(1, 3), group=True)
            if kind == "group_vars" and rng.random() < 0.2:
                values["ansible_group_priority"] = rng.choice(("3", "7"))
            body = "\n".join(self._yaml_vars(values, 0)) + "\n"
            shape = rng.choice(("yml", "yml", "yaml", "bare", "json", "dir", "both"))
            base = f"{root}{kind}/{name}"
            if shape == "dir":
                files[f"{base}/10.yml"] = body
                more = self._vars(1, group=True)
                files[f"{base}/sub/20.yaml"] = "\n".join(self._yaml_vars(more, 0)) + "\n"
            elif shape == "both":  # the first of name, name.yml, name.yaml, name.json wins
                files[f"{base}.yml"] = body
                other = self._vars(1, group=True)
                files[f"{base}.yaml"] = "\n".join(self._yaml_vars(other, 0)) + "\n"
            elif shape == "json":
                files[f"{base}.json"] = _json_body(values, self)
            else:
                files[base + {"yml": ".yml", "yaml": ".yaml", "bare": ""}[shape]] = body
        return files

    # -- patterns ------------------------------------------------------------------------
    def _patterns(self, hosts: list[str], ambiguous: frozenset[str]) -> tuple[list[str], set[str]]:
        rng = self.rng
        patterns = ["all", "*"]
        unknown: set[str] = set()
        for _ in range(26):
            count = rng.choice((1, 1, 2, 2, 3))
            terms = [self._term(hosts, ambiguous) for _ in range(count)]
            if rng.random() < 0.08:
                bad = rng.choice(UNKNOWN_TERMS)
                unknown.add(bad)
                terms.append(bad)
            prefixed = [terms[0] if i == 0 and rng.random() < 0.8 else self._prefix(t)
                        for i, t in enumerate(terms)]  # fmt: skip
            if any(":" in t and "[" not in t for t in prefixed):  # an IPv6 address
                patterns.append(",".join(prefixed))
            else:
                patterns.append(rng.choice((",", ":")).join(prefixed))
        return list(dict.fromkeys(patterns)), unknown

    def _prefix(self, term: str) -> str:
        return self.rng.choice(("", "", "&", "!", "!")) + term

    def _term(self, hosts: list[str], ambiguous: frozenset[str]) -> str:
        rng = self.rng
        groups = list(self.groups)
        kind = rng.choice(("group", "group", "host", "glob", "regex", "subscript", "all"))
        if kind == "host" and hosts:
            return rng.choice(hosts)
        if kind == "glob":
            name = rng.choice(groups + hosts)
            cut = rng.randint(1, max(1, len(name) - 1))
            return rng.choice((name[:cut] + "*", "?" + name[1:], name[:cut] + "*" + name[-1:]))
        if kind == "regex":
            name = rng.choice(groups + hosts)
            return "~" + re.escape(name[: rng.randint(1, len(name))]) + rng.choice(("", ".*", "$"))
        if kind == "subscript":
            candidates = [g for g in groups if g not in ambiguous]
            if candidates:
                base = rng.choice(candidates)
                glob = base[: rng.randint(1, len(base))] + "*"
                if rng.random() < 0.3 and not any(_matches(glob, g) for g in ambiguous):
                    base = glob  # a glob over groups and hosts, then the subscript
                return base + rng.choice(
                    ("[0]", "[1]", "[-1]", "[0:1]", "[1:2]", "[1:]", "[0:0]", "[2:5]", "[1-2]")
                )
        if kind == "all":
            return rng.choice(("all", "ungrouped", "*"))
        return rng.choice(groups)

    def _limits(
        self, hosts: list[str], ambiguous: frozenset[str], files: dict[str, str]
    ) -> list[tuple[str, list[str]]]:
        rng = self.rng
        limits: list[tuple[str, list[str]]] = []
        for _ in range(rng.choice((1, 1, 2))):
            terms = [self._term(hosts, ambiguous) for _ in range(rng.choice((1, 2)))]
            if rng.random() < 0.3:
                if rng.random() < 0.3:  # a line is one term: 'a:b' is not split
                    terms.append(rng.choice(("!", "")) + ":".join(rng.sample(list(self.groups), 1)))
                files["limit.txt"] = "\n".join(terms) + "\n\n"
                limit = "@LIMIT" if rng.random() < 0.5 else f"@LIMIT,{self._term(hosts, ambiguous)}"
            else:
                prefixed = [terms[0], *(self._prefix(t) for t in terms[1:])]
                joined = ",".join(prefixed)
                limit = (
                    joined
                    if any(":" in t for t in prefixed)
                    else rng.choice((",", ":")).join(prefixed)
                )
            patterns, _ = self._patterns(hosts, ambiguous)
            limits.append((limit, [p for p in patterns[:12] if not _has_unknown(p)]))
        return limits


def _has_unknown(pattern: str) -> bool:
    return any(term.lstrip("&!") in UNKNOWN_TERMS for term in _terms(pattern))


def _json_body(values: Mapping[str, str], generator: Generator) -> str:
    literals = {k: generator._literal("yaml", k, v) for k, v in values.items()}
    parsed = {
        k: yaml.safe_load(v) if v[:2] != "!v" and v[:2] != "!u" else v for k, v in literals.items()
    }
    return json.dumps(parsed, default=str) + "\n"
