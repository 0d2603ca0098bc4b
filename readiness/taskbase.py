"""invoke glue generated from :mod:`readiness.options`: tasks, arguments, help, values.

invoke derives a flag's type from its default (a parameter defaulting to ``None``
arrives as ``str``), picks short flags itself, and its help knows only ``STRING``
and ``INT``. :class:`ReadinessTask` builds each task's arguments from the option
table instead: explicit short flags only, values parsed as text and coerced by
:func:`resolve` (one line naming the option and its range on a bad value), and a
typed placeholder in ``--help`` (``--forks INT``) for both ``invoke`` and
``readiness``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from invoke.parser.argument import Argument
from invoke.parser.context import ParserContext
from invoke.program import Program
from invoke.tasks import Task

from .errors import UsageError
from .interrupt import exit_code_for, handle_signals, signal_name
from .options import OptionSpec, option, validate_config

__all__ = [
    "READINESS_CONFIG_FILE",
    "ReadinessTask",
    "TypedArgument",
    "load_settings",
    "readiness_task",
    "resolve",
]

READINESS_CONFIG_FILE = "readiness.yaml"


class TypedArgument(Argument):
    """An invoke Argument that knows its help placeholder and its option spec."""

    def __init__(self, spec: OptionSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.placeholder = spec.metavar if spec.takes_value else ""
        if self.kind is list:
            # invoke only notices a missing value when raw_value is None; a list starts as [],
            # so `-c` given last would silently mean "every check".
            self.raw_value = None


# Tasks that answer signals themselves: Celery's worker installs its own handlers (warm
# and cold shutdown), and the Nagios plugin answers an interruption as UNKNOWN (3).
_OWN_SIGNALS = frozenset({"worker", "nagios"})


class ReadinessTask(Task[Callable[..., Any]]):
    """A Task whose arguments come from the option table, never from defaults or guesses."""

    def option_specs(self) -> dict[str, OptionSpec]:
        """Parameter name → the option spec this task means by it."""
        sig = self.argspec(self.body)
        return {name: option(name, self.name) for name in sig.parameters}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``invoke show --help``: invoke's parser gives ``--help`` to the task's positional
        argument (``RUN``, ``FILE``), which looked for a run or file named "--help". The
        ``readiness`` program turns that into help before parsing (cli._help_wins); the
        ``invoke`` program reaches the task, which prints its help here, as
        ``invoke --help show`` does, and exits 0."""
        if any(kwargs.get(name) in _HELP_FLAGS for name in self.positional) or any(
            a in _HELP_FLAGS for a in args[1:]
        ):
            _print_help(self.name)
        if self.name in _OWN_SIGNALS:
            return super().__call__(*args, **kwargs)
        # Every other task exits 130/143/129 on SIGINT/SIGTERM/SIGHUP, as the fleet tasks
        # do: invoke turned a Ctrl-C into exit 1 (readiness' "not ready") and SIGTERM
        # killed the process outright (a store task's transaction rolls back either way).
        from invoke.exceptions import Exit

        try:
            with handle_signals():
                return super().__call__(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise Exit("readiness: interrupted", code=exit_code_for(signal_name(exc))) from None

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args: list[Argument] = []
        for name, spec in self.option_specs().items():
            names = [name.replace("_", "-")]
            if spec.short:
                names.append(spec.short)
            kwargs: dict[str, Any] = {
                "names": names,
                "attr_name": name if "_" in name else None,
                "help": spec.full_help(),
                "optional": spec.optional_value,
                "positional": name in self.positional,  # a parameter without a default
            }
            if spec.kind == "bool":
                kwargs.update(kind=bool, default=False)
            elif spec.kind == "list" or spec.repeatable:
                kwargs.update(kind=list, default=[])
            else:
                kwargs.update(kind=str, default=None)  # coerced by resolve(), not by invoke
            args.append(TypedArgument(spec, **kwargs))
        return args


_HELP_FLAGS = ("-h", "--help")


def _print_help(task: str) -> None:
    """The task's help as ``invoke --help TASK`` prints it; exits 0 (SystemExit)."""
    from .tasks import ns  # here: the task collection imports this module

    Program(name="Invoke", binary="inv[oke]", namespace=ns).run(["invoke", "--help", task])
    raise SystemExit(0)


def readiness_task(**kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@task(...)`` for this project: a :class:`ReadinessTask`, never automatic short flags."""
    from invoke.tasks import task

    kwargs.setdefault("klass", ReadinessTask)
    kwargs.setdefault("auto_shortflags", False)
    decorate: Callable[[Callable[..., Any]], Any] = task(**kwargs)
    return decorate


_invoke_help_for = ParserContext.help_for


def _help_for(self: ParserContext, flag: str) -> tuple[str, str]:
    """``--forks INT, -f INT`` instead of invoke's ``--forks=STRING`` (or nothing for floats)."""
    arg = self.flags.get(flag)
    placeholder = getattr(arg, "placeholder", None)
    if arg is None or not placeholder:
        return _invoke_help_for(self, flag)
    shown = []
    for name in self.names_for(flag):
        if arg.optional:
            shown.append(f"{name} [{placeholder}]")
        else:
            shown.append(f"{name} {placeholder}")
    return ", ".join(sorted(shown, key=len)), arg.help or ""


# invoke renders help from ParserContext.help_for in both entry points; only our typed
# arguments change, every other argument keeps invoke's rendering.
ParserContext.help_for = _help_for  # type: ignore[method-assign]


def _print_columns(self: Program, tuples: Any) -> None:
    """invoke's two-column help, wrapped at spaces only: invoke's ``textwrap`` default cut a
    word longer than the column (``~/.local/sha`` / ``re/readiness/history.sqlite3``) and
    broke at hyphens (``remediation-`` / ``audit.jsonl``), so a path or URL could not be
    read or copied. A word longer than the column now overflows the line, whole.

    The name column is at most half the width: a name longer than that (``production.validate
    (production.validate-production)`` in the task list) is on a line of its own, its help
    below, as argparse does, instead of squeezing every help into a 22-column strip."""
    import sys
    import textwrap  # help output only: start-up does not pay for it

    from invoke.terminals import pty_size

    rows = [(name, help_str or "") for name, help_str in tuples]
    width = pty_size()[0]
    room = width - self.leading_indent_width - self.col_padding - 1
    widest = max(20, room // 2)
    name_width = max((len(name) for name, _ in rows if len(name) <= widest), default=widest)
    desc_width = max(20, room - name_width)
    wrapper = textwrap.TextWrapper(width=desc_width, break_long_words=False, break_on_hyphens=False)
    indent = " " * (self.leading_indent_width + name_width + self.col_padding)
    lines = []
    for name, help_str in rows:
        chunks = wrapper.wrap(help_str)
        if len(name) > name_width:  # a long name alone on its line; its help below
            lines.append(self.leading_indent + name)
            lines.extend(indent + chunk for chunk in chunks)
            continue
        spec = self.leading_indent + name.ljust(name_width) + " " * self.col_padding
        chunks = chunks or [""]
        lines.append((spec + chunks[0]).rstrip())
        lines.extend(indent + chunk for chunk in chunks[1:])
    sys.stdout.write("\n".join(lines) + "\n\n")


# Both entry points (``invoke`` and ``readiness``) print task help and ``--list`` through
# Program.print_columns, as they take flags from help_for above.
Program.print_columns = _print_columns  # type: ignore[method-assign]


def load_settings(
    config_section: Any = None,
    cwd: Path | None = None,
    runtime: Any = None,
    runtime_path: str | None = None,
) -> dict[str, Any]:
    """The ``readiness:`` settings: invoke's configuration, then ``./readiness.yaml`` over it,
    then the ``readiness:`` section of the runtime file (``-f FILE``) over both.

    Every key must be an option the table marks ``config``; values are coerced like flags.
    """
    from .inventory.source import Where
    from .inventory.strict_yaml import parse_yaml

    if isinstance(config_section, Mapping) and isinstance(runtime, Mapping):
        # invoke merged the -f file into its configuration: its keys are judged (and named)
        # as the -f file's below, not as invoke.yaml's
        config_section = {k: v for k, v in config_section.items() if k not in runtime}
    settings = validate_config(config_section, "configuration (invoke.yaml)")
    path = (cwd or Path.cwd()) / READINESS_CONFIG_FILE
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read: {exc}") from None
        data = parse_yaml(text, Where(str(path))) or {}
        if isinstance(data, Mapping) and set(data) == {"readiness"}:
            data = data["readiness"]
        settings.update(validate_config(data, str(path)))
    if runtime:
        settings.update(validate_config(runtime, runtime_path or "configuration (-f FILE)"))
    return settings


def _joined(spec: OptionSpec, values: list[Any]) -> str | None:
    """A repeatable option given several times (``-i a -i b``) as one ``a,b`` value; not
    given at all (invoke's empty list) is None."""
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise spec.error(value)
    return ",".join(values) if values else None


def resolve(task: str, given: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values for every parameter: a given flag wins, then settings, then the default."""
    out: dict[str, Any] = {}
    for name, raw in given.items():
        spec = option(name, task)
        value = _joined(spec, raw) if spec.repeatable and isinstance(raw, list) else raw
        if spec.kind == "bool":
            out[name] = spec.coerce(value) or bool(spec.config and settings.get(name))
        elif spec.kind == "list":
            out[name] = spec.coerce(value) if value is not None else []
        elif value is None:
            out[name] = settings.get(name, spec.default) if spec.config else spec.default
        elif spec.optional_value and value is True:
            out[name] = True
        else:
            out[name] = spec.coerce(value)
    return out
