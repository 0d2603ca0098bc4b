"""Print the option and configuration tables of docs/cli.md from readiness.options.

Run ``python tools/cli_doc.py`` and paste between the markers in docs/cli.md;
tests/cli/test_contract.py fails when the document and the table disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from readiness.options import OPTIONS, OptionSpec
from readiness.tasks import ns

BEGIN, END = "<!-- options:begin -->", "<!-- options:end -->"


def _value(spec: OptionSpec) -> str:
    if spec.kind == "bool":
        return ""
    if spec.optional_value:
        return f"`[{spec.metavar}]`"
    if spec.kind in ("str", "list"):
        return f"`{spec.metavar}`"
    return f"`{spec.metavar}` {spec.valid_range()}"


def tables() -> str:
    rows: dict[tuple[object, ...], tuple[OptionSpec, list[str]]] = {}
    seen: set[int] = set()
    for ctx in ns.to_contexts():
        task = ns[ctx.name]
        if id(task) in seen:
            continue
        seen.add(id(task))
        for arg in {id(a): a for a in ctx.args.values()}.values():
            spec = arg.spec
            key = (spec.flag, spec.full_help(), spec.short, _value(spec))
            rows.setdefault(key, (spec, []))[1].append(ctx.name)
    out = [BEGIN, "| option | short | value | tasks | what |", "|---|---|---|---|---|"]
    for (flag, text, short, value), (_, tasks) in sorted(rows.items(), key=lambda kv: str(kv[0])):
        letter = f"`-{short}`" if short else ""
        shown = text.replace("|", "/")
        out.append(f"| `{flag}` | {letter} | {value} | {', '.join(tasks)} | {shown} |")
    out += ["", "Keys accepted under `readiness:` in the configuration files:", ""]
    out += ["| key | value | what |", "|---|---|---|"]
    for name, spec in OPTIONS.items():
        if spec.config:
            empty = ' (`""`: none)' if spec.allow_empty else ""
            out.append(f"| `{name}` | {spec.valid_range()}{empty} | {spec.help} |")
    out.append(END)
    return "\n".join(out)


if __name__ == "__main__":
    print(tables())
