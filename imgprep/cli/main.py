"""The ``imgprep`` command: a click group whose subcommands are imported only when used."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from imgprep import __version__
from imgprep.errors import ImgprepError

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
    "processing": "imgprep.cli.processing:processing",
    "launch": "imgprep.cli.processing:launch",
}

INTERRUPTED = ("imgprep: interrupted; nothing was committed (shards already published are kept: "
               "rerun with --resume to continue)")

EPILOG = """\b
Examples:
  imgprep convert folders photos/ -o lists/ --split train=0.8,val=0.2
  imgprep pack lists/train.lst --root photos/ -o out/train --resize 256
  imgprep prepare mnist fashion-mnist/ -o s3://bucket/fmnist/
  imgprep pack train.lst --root imgs/ -o shards/train --shard-records 10000 -j 8

Run 'imgprep COMMAND --help' for a command's options and examples."""


class LazyGroup(click.Group):
    def _available(self) -> dict[str, str]:
        out = {}
        for name, target in COMMANDS.items():
            module = target.partition(":")[0]
            if importlib.util.find_spec(module) is not None:
                out[name] = target
        return out

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._available()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self._available().get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr, None)
        return command if isinstance(command, click.Command) else None


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imgprep")
def cli() -> None:
    """Fast, deterministic data preparation for image classification.

    Turns COCO, Fashion-MNIST, Caltech, class folders and Ground Truth manifests into
    stratified .lst files, augmented manifests and MXNet RecordIO shards — on local disk or
    straight to S3 — for SageMaker's image classification algorithm, MXNet/GluonCV and DALI.
    """


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: one-line errors, documented exit statuses.

    0 success (skipped images are listed in the report), 1 error, 2 usage error,
    3 a bad image with --strict, 130 interrupted (nothing committed; published shards are kept
    for ``--resume``).
    """
    try:
        return cli.main(args=argv, prog_name="imgprep", standalone_mode=False)
    except ImgprepError as exc:
        click.echo(f"imgprep: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo(INTERRUPTED, err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo(INTERRUPTED, err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
