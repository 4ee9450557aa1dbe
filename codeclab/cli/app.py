"""The `codeclab` command line: a typer app; each command group lives in its own module and stays thin."""

from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from codeclab._checks import FALSE_WORDS, TRUE_WORDS
from codeclab.cli import (
    bench_cmd,
    clab_cmd,
    codecs_cmd,
    corpus_cmd,
    demo_cmd,
    export_cmd,
    teacher_cmd,
    tokenize_cmd,
    train_cmd,
)
from codeclab.cli.common import EXIT_INPUT, EXIT_INTERNAL, err_console, progress_bars

app = typer.Typer(
    name="codeclab",
    help="Neural audio codecs and discrete audio tokenizers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from codeclab._version import __version__

        typer.echo(f"codeclab {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Neural audio codecs and discrete audio tokenizers."""


codecs_cmd.register(app)
demo_cmd.register(app)
tokenize_cmd.register(app)
clab_cmd.register(app)
export_cmd.register(app)
train_cmd.register(app)
corpus_cmd.register(app)
bench_cmd.register(app)
teacher_cmd.register(app)


def command_tree():
    """The click command tree of `app`, with switches shown as switches: help prints no `<bool>` type
    after `--random-init`, which made `--random-init true` look valid."""
    command = typer.main.get_command(app)
    stack = [command]
    while stack:
        node = stack.pop()
        for param in node.params:
            if getattr(param, "is_flag", False):
                _no_type_column(param)
        node.get_help_option = _switch_help_option(node.get_help_option)  # --help is built on demand
        stack.extend(getattr(node, "commands", {}).values())
    return command


def _no_type_column(param):
    """Show `param` without a type in typer's rich help (`display_type_rich` fills that column)."""
    param.display_type_rich = lambda ctx: None
    return param


def _switch_help_option(get_help_option):
    return lambda ctx: None if (option := get_help_option(ctx)) is None else _no_type_column(option)


def main(argv: list[str] | None = None) -> None:
    """Run the command line with the documented exit codes (docs/reliability.md): 0 done, 1 some items failed
    (listed), 2 a usage or input error, 3 an internal error. Errors print one line; `--debug` (anywhere
    on the line) or CODECLAB_DEBUG=1 adds the traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("CODECLAB_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    stray = stray_switch_value(args)
    if stray is not None:
        err_console.print(f"[bold red]error:[/] {escape(str(stray))}", highlight=False, markup=True)
        sys.exit(EXIT_INPUT)
    try:
        with progress_bars():
            command_tree()(args=args, prog_name="codeclab")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]", markup=True)
        sys.exit(130)
    except Exception as err:  # the one place every uncaught error becomes a one-line message
        code, kind = (EXIT_INPUT, "error") if isinstance(err, OSError) else (EXIT_INTERNAL, "internal error")
        if debug:
            err_console.print_exception()
        message = f"{type(err).__name__}: {err}" if kind == "internal error" else str(err)
        hint = "" if debug else " (rerun with --debug for the traceback)"
        err_console.print(
            f"[bold red]{kind}:[/] {escape(str(message))}{escape(str(hint))}", highlight=False, markup=True
        )
        sys.exit(code)


BOOLEAN_WORDS = TRUE_WORDS + FALSE_WORDS


def stray_switch_value(args: list[str]) -> str | None:
    """A message when a switch is followed by a boolean word (`--random-init true`): click would read the
    word as the next argument, e.g. an input path. None when the line has no such pair."""
    pairs = [
        i for i in range(len(args) - 1) if args[i].startswith("--") and args[i + 1].lower() in BOOLEAN_WORDS
    ]
    if not pairs:  # the usual line: no need to build the command tree
        return None
    command = typer.main.get_command(app)
    ctx = command.context_class(command)
    for i, arg in enumerate(args):
        lookup = getattr(command, "get_command", None)  # groups have it; a leaf command does not
        sub = lookup(ctx, arg) if callable(lookup) else None
        if sub is not None:
            command = sub
            continue
        if i in pairs:
            switches = {opt for p in command.params if getattr(p, "is_flag", False) for opt in p.opts}
            if arg in switches:
                return (
                    f"{arg} is a switch: write {arg} to turn it on and leave it out to keep it off, "
                    f"not '{arg} {args[i + 1]}'"
                )
    return None


if __name__ == "__main__":  # pragma: no cover
    main()
