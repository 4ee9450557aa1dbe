"""The `codeclab` command line: a typer app; each command group lives in its own module and stays thin."""

from __future__ import annotations

import typer

from codeclab.cli import (
    bench_cmd,
    bitstream_cmd,
    codecs_cmd,
    corpus_cmd,
    demo_cmd,
    export_cmd,
    teacher_cmd,
    tokenize_cmd,
    train_cmd,
)

app = typer.Typer(
    name="codeclab",
    help="Neural audio codecs and discrete audio tokenizers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
codecs_cmd.register(app)
demo_cmd.register(app)
tokenize_cmd.register(app)
bitstream_cmd.register(app)
export_cmd.register(app)
train_cmd.register(app)
corpus_cmd.register(app)
bench_cmd.register(app)
teacher_cmd.register(app)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
