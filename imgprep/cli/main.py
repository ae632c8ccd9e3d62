"""The ``imgprep`` command: a click group whose subcommands are imported only when used."""

from __future__ import annotations

import atexit
import gc
import importlib
import importlib.util
import os
import sys
from typing import Any

import click

from imgprep import __version__
from imgprep.exits import INTERRUPTED, failure

# name -> "module:attribute"; modules import their heavy dependencies inside the command.
COMMANDS = {
    "convert": "imgprep.cli.convert:convert",
    "prepare": "imgprep.cli.convert:prepare",
    "pack": "imgprep.cli.pack:pack",
    "merge": "imgprep.cli.s3cmds:merge",
    "cleanup": "imgprep.cli.s3cmds:cleanup",
    "doctor": "imgprep.cli.doctor:doctor",
    "verify": "imgprep.cli.verify:verify",
    "inspect": "imgprep.cli.inspect:inspect",
    "processing": "imgprep.processing.command:processing",
    "launch": "imgprep.cli.processing:launch",
}

EPILOG = """\b
Examples:
  imgprep convert folders photos/ -o lists/ --split train=0.8,val=0.2
  imgprep pack lists/train.lst --root photos/ -o out/train --resize 256
  imgprep prepare mnist fashion-mnist/ -o s3://bucket/fmnist/
  imgprep pack train.lst --root imgs/ -o shards/train --shard-records 10000 -j 8

Run 'imgprep COMMAND --help' for a command's options and examples."""


def _available(name: str) -> str | None:
    """``name``'s "module:attribute", if that module is installed."""
    target = COMMANDS.get(name)
    if target is None or importlib.util.find_spec(target.partition(":")[0]) is None:
        return None
    return target


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {name for name in COMMANDS if _available(name)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _available(cmd_name)  # only the command asked for is looked up
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr, None)
        return command if isinstance(command, click.Command) else None


_DEBUG = {"on": False}


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    _DEBUG["on"] = _DEBUG["on"] or value
    return value


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imgprep")
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_debug,
    help="Show the traceback of an unexpected error (a bug) instead of writing it to a log file.",
)
def cli() -> None:
    """Fast, deterministic data preparation for image classification.

    Turns COCO, Fashion-MNIST, Caltech, class folders and Ground Truth manifests into
    stratified .lst files, augmented manifests and MXNet RecordIO shards — on local disk or
    straight to S3 — for SageMaker's image classification algorithm, MXNet/GluonCV and DALI.
    """


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: one-line errors, documented exit statuses (see :mod:`imgprep.exits`).

    0 success (skipped images are listed in the report), 1 error, 2 usage error,
    3 a bad image with --strict, 130 interrupted (nothing committed; published shards are kept
    for ``--resume``).
    """
    # The command ends its process.  The interpreter's last collections at exit walk every object
    # still alive (modules, classes, functions) to free memory the system takes back anyway: frozen
    # at exit, they are skipped.  atexit handlers, closes and flushes all still run; only the
    # finalizers of objects left in reference cycles at exit do not (imgprep closes what it opens).
    atexit.unregister(gc.freeze)  # once, however often main() runs in a process
    atexit.register(gc.freeze)
    try:
        return cli.main(args=argv, prog_name="imgprep", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the one place an error becomes a status
        sys.exit(_report(exc))


def _report(exc: BaseException) -> int:
    """Say what went wrong on stderr, the CLI's way; the exit status."""
    result = failure(exc)
    if isinstance(exc, click.ClickException):
        from imgprep.options.usage import reword  # here: the option table loads only for a command or an error

        click.echo(f"imgprep: error: {reword(exc)}", err=True)  # one style for every error
    elif result.interrupted:
        click.echo(f"imgprep: {INTERRUPTED}", err=True)
    elif result.bug:
        click.echo(f"imgprep: {report_bug(exc, result.reason)}", err=True)
    elif result.reason:
        click.echo(f"imgprep: error: {result.reason}", err=True)
    return result.status


def report_bug(exc: BaseException, summary: str) -> str:
    """``summary`` (one line saying an unexpected error is a bug); the traceback goes to stderr with
    --debug (or IMGPREP_DEBUG=1), else to a log file the line names."""
    import tempfile  # here, not at the top: only a bug needs them (and traceback)
    import traceback

    text = "".join(traceback.format_exception(exc))
    summary = summary.splitlines()[0][:300] if summary.strip() else summary
    if _DEBUG["on"] or os.environ.get("IMGPREP_DEBUG", "") not in ("", "0"):
        sys.stderr.write(text)
        return summary
    try:
        fd, log = tempfile.mkstemp(prefix="imgprep-bug-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
    except OSError:
        return f"{summary} (rerun with --debug for the traceback)"
    return f"{summary}; traceback in {log} (or rerun with --debug)"
