"""The ``readiness`` console script: invoke's Program over the same task collection.

Differences from ``invoke`` (docs/cli.md):

- only the core options that mean something here (help, version, list, completion);
  invoke's ``-R/--dry``, ``-T/--command-timeout``, ``-e``, ``-p`` ... are not offered;
- every command-line mistake is a usage error: one line on stderr, exit 2, with
  "did you mean" for a mistyped task or option;
- configuration: invoke's files (/etc/invoke.yaml, ~/.invoke.yaml, ./invoke.yaml) and
  ./readiness.yaml, the ``readiness:`` section validated key by key;
- a closed stdout (``| head -1``) ends quietly.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# A signal before a task runs: see readiness.console (installed by readiness/__init__.py
# when the console script starts).
from ._lean_invoke import import_invoke

import_invoke()  # before the first invoke import: without unittest.mock (see _lean_invoke)

from invoke.exceptions import Exit, ParseError  # noqa: E402
from invoke.parser.argument import Argument  # noqa: E402
from invoke.program import Program  # noqa: E402

from . import __version__  # noqa: E402
from .options import closest, did_you_mean  # noqa: E402
from .report import emit, silence_stdout  # noqa: E402
from .report._clean import one_line  # noqa: E402
from .tasks import ns  # noqa: E402

__all__ = ["main", "program"]

_LIST_FORMATS = ("flat", "nested", "json")
_DEPTH = "an integer 0 or more (0: every level)"
_UNKNOWN = re.compile(r"No idea what '(?P<word>[^']*)' is!")
_NEEDS_VALUE = re.compile(r"Flag <\w*Argument: (?P<name>[\w-]+)[^>]*> needed value.*")


@contextlib.contextmanager
def _config_errors(refuse: Callable[[str], Exit]) -> Iterator[None]:
    """A configuration file invoke cannot load (bad YAML or JSON, an unknown extension, a
    failing .py) as one line and exit 2; invoke's errors name the file."""
    try:
        yield
    except Exit:
        raise
    except Exception as exc:  # any loader's error: yaml, json, a .py file's
        raise refuse(f"configuration file: {one_line(exc)}") from None


def _usage_line(exc: ParseError) -> str:
    """invoke's parse error as a user reads it (``--check needs a value``)."""
    text = str(exc)
    found = _NEEDS_VALUE.search(text)
    if found:
        return f"--{found.group('name')} needs a value"
    return text


# Typed placeholders for the core options' help, as the tasks' options have (taskbase's
# help_for shows them): invoke's own read "-f STRING, --config=STRING".
_CORE_PLACEHOLDERS: dict[str, str] = {
    "help": "TASK",
    "list": "NAMESPACE",
    "list-depth": "INT",
    "list-format": "FORMAT",
    "config": "FILE",
    "print-completion-script": "SHELL",
}


class ReadinessProgram(Program):
    """invoke's Program with readiness's core options, config files and usage errors."""

    def core_args(self) -> list[Argument]:
        keep = {"help", "version", "list", "list-depth", "list-format", "complete", "config"}
        keep.add("print-completion-script")
        args = [a for a in super().core_args() if a.name in keep]
        for arg in args:
            if arg.name in _CORE_PLACEHOLDERS:
                vars(arg)["placeholder"] = _CORE_PLACEHOLDERS[arg.name]
        return args

    def task_args(self) -> list[Argument]:
        return []

    def parse_core(self, argv: list[str] | None) -> None:
        self.normalize_argv(argv)
        self._help_wins()
        try:
            self.parse_core_args()
        except ParseError as exc:
            raise Exit(f"readiness: {exc}", code=2) from None
        except ValueError:  # invoke's int() of the one integer core option
            raise Exit(f"readiness: --list-depth: expected {_DEPTH}", code=2) from None
        self._check_list_options()
        if self.args.version.value:
            self.print_version()
            raise Exit
        if self.args["print-completion-script"].value:
            from invoke.completion.complete import print_completion_script

            try:
                print_completion_script(
                    shell=self.args["print-completion-script"].value, names=self.binary_names
                )
            except ParseError as exc:  # an unknown shell
                raise Exit(f"readiness: {exc}", code=2) from None
            raise Exit

    def _check_list_options(self) -> None:
        """-F/--list-format and -D/--list-depth as one line and exit 2 (invoke: a traceback)."""
        fmt = self.args["list-format"].value
        if fmt not in _LIST_FORMATS:
            choices = ", ".join(_LIST_FORMATS)
            raise Exit(f"readiness: --list-format: expected one of {choices}, got {fmt!r}", code=2)
        depth = self.args["list-depth"].value
        if depth is not None and depth < 0:
            raise Exit(f"readiness: --list-depth: expected {_DEPTH}, got {depth}", code=2)

    def _help_wins(self) -> None:
        """``readiness TASK ... -h`` is that task's help, even where a positional argument
        (``show RUN``) would otherwise take ``-h`` as its value."""
        args = self.argv[1:]
        if args and not args[0].startswith("-") and any(a in ("-h", "--help") for a in args[1:]):
            self.argv = [self.argv[0], "--help", args[0]]

    def create_config(self) -> None:
        """invoke's system and user files (/etc/invoke.yaml, ~/.invoke.yaml): a file that
        cannot be read is a usage error, not invoke's traceback."""
        with _config_errors(self._refuse):
            super().create_config()

    def update_config(self, merge: bool = True) -> None:
        """invoke's system and user files, plus ./invoke.yaml (as ``invoke`` run from here)."""
        with _config_errors(self._refuse):
            self.config.set_project_location(str(Path.cwd()))
            self.config.load_project(merge=False)
        given = self.args.config.value
        runtime = given or os.environ.get("INVOKE_RUNTIME_CONFIG")
        if runtime and not Path(runtime).expanduser().is_file():
            # invoke skips a runtime file it cannot find: a typo in -f would silently run
            # with every default
            named = f"-f {runtime}" if given else f"$INVOKE_RUNTIME_CONFIG {runtime}"
            raise self._refuse(f"{named}: no such configuration file")
        with _config_errors(self._refuse):
            self.config.set_runtime_path(Path(runtime) if runtime else None)
            self.config.load_runtime(merge=False)
        if merge:
            self.config.merge()

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            twice = self._given_twice(str(exc))
            if twice:
                raise self._refuse(twice) from None
            raise self._refuse(f"{_usage_line(exc)}{self._hint(str(exc))}") from None

    def parse_cleanup(self) -> None:
        try:
            super().parse_cleanup()
        except ParseError as exc:
            raise self._refuse(f"{_usage_line(exc)}{self._hint(str(exc))}") from None
        except Exit as exc:
            # invoke's own refusals while listing ("Sub-collection 'x' not found!", -D with
            # -F json) exit 1, which readiness keeps for a fleet that is not ready
            if exc.code == 1 and exc.message:
                raise self._refuse(str(exc.message)) from None
            raise

    def _refuse(self, reason: str) -> Exit:
        """A usage error before any task runs: ``readiness: reason`` on stderr, exit 2; for
        the ``nagios`` task the plugin convention instead (``READINESS UNKNOWN - reason`` on
        stdout, exit 3): a typo in a monitoring command must not page as CRITICAL (2) with
        an empty status line."""
        if self._first_task() == "nagios":
            from .report.nagios import NagiosState, nagios_unknown

            emit(nagios_unknown(reason))
            return Exit(code=int(NagiosState.UNKNOWN))
        return Exit(f"readiness: {reason}", code=2)

    def _first_task(self) -> str | None:
        """The first task named on the command line (the one whose options are parsed)."""
        names = set(ns.task_names)
        # create_config (/etc/invoke.yaml, ~/.invoke.yaml) runs before invoke has set argv
        argv = vars(self).get("argv") or sys.argv
        return next((token for token in argv[1:] if token in names), None)

    def _hint(self, message: str) -> str:
        found = _UNKNOWN.search(message)
        if not found:
            return ""
        word = found.group("word")
        if word.startswith("-"):
            contexts = self.parser.contexts
            task = self._task_before(word)
            scope = [contexts[task]] if task else list(contexts.values())
            # Only the flags of the task being parsed, never the unknown word itself.
            flags = {f for ctx in scope for f in ctx.flags} - {word}
            # compared without their dashes: the shared "--" made '--nope' "close" to '--store'
            bare = {f.lstrip("-"): f for f in flags}
            close = closest(word.lstrip("-"), sorted(bare))
            return f" (did you mean {bare[close]!r}?)" if close else ""
        names = list(self.collection.task_names)
        names += [a for aliases in self.collection.task_names.values() for a in aliases]
        if word in ("help", "version", "list") and word not in names:  # git's and pip's habit
            return f" (did you mean '--{word}'?)"
        return did_you_mean(word, names)

    def _given_twice(self, message: str) -> str:
        """``--hosts given twice ('a', then 'b'): give it once`` when invoke's "No idea what
        'b' is!" comes from an option that takes one value given a second time (invoke keeps
        the first and reads the second value as a task name); else ""."""
        found = _UNKNOWN.search(message)
        if not found:
            return ""
        word = found.group("word")
        tokens = self.argv[1:]
        first: dict[tuple[str | None, int], str] = {}  # (task, option): its first value
        task = None
        for at, token in enumerate(tokens):
            if token in self.parser.contexts:
                task = token
                continue
            name, eq, value = token.partition("=")
            context = self.parser.contexts.get(task) if task else None
            # flags is a Lexicon: `in` and [] also know the short aliases, .get() does not
            flag = context.flags[name] if context and name in context.flags else None
            if flag is None or not flag.takes_value or flag.kind is list:
                continue
            if not eq:
                value = tokens[at + 1] if at + 1 < len(tokens) else ""
            if (task, id(flag)) in first and value == word:
                said = first[task, id(flag)]
                return f"{name} given twice ({said!r}, then {word!r}): give it once"
            first.setdefault((task, id(flag)), value)
        return ""

    def _task_before(self, flag: str) -> str | None:
        """The task whose arguments ``flag`` was given among (the last task name before it)."""
        task = None
        for token in self.argv[1:]:
            if token.split("=", 1)[0] == flag:
                return task
            if token in self.parser.contexts:
                task = token
        return task


program = ReadinessProgram(name="readiness", binary="readiness", namespace=ns, version=__version__)


def main() -> None:
    try:
        program.run()
    except BrokenPipeError:  # --list, --help or completion output into `| head -1`
        silence_stdout()
        sys.exit(0)
