"""The Processing job's entrypoint: ``python -m imgprep.processing`` and ``imgprep processing``.

``imgprep processing prepare ...`` and ``imgprep processing pack ...`` take exactly the options of
``imgprep prepare`` / ``imgprep pack`` (the same decorators), plus the cluster options; a
``--config`` JSON/YAML file may hold any of them.  ``python -m imgprep.processing`` is the same
command with the platform's failure contract: a one-line reason in ``/opt/ml/output/message`` and a
non-zero exit status, for usage errors too.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from imgprep.errors import UsageError
from imgprep.exits import failure
from imgprep.options import BUILD_PACK, DATASET, LINKS, OPTIONS, PACK, KindCommand, Option, declare, options
from imgprep.options.table import TARGETS
from imgprep.options.usage import reword
from imgprep.processing.config import load_options_file, opt_ml_root, write_message

JOB_EXAMPLES = """\b
Examples (container arguments; imgprep launch passes them):
  pack /opt/ml/processing/input/lists/train.lst --root /opt/ml/processing/input/images \\
      -o s3://bucket/out/train --resize 256
  prepare caltech /opt/ml/processing/input/data -o s3://bucket/caltech/ --resize 256 \\
      --num-parts 4 --part-index 0 --run-id job-1      # under another scheduler"""

CLUSTER_EPILOG = """\b
Cluster: the part this host packs comes from /opt/ml/config/resourceconfig.json (current_host,
hosts), or --num-parts/--part-index. FullyReplicated inputs: each host packs a contiguous slice of
every list; ShardedByS3Key inputs: each host packs the images it received. The first host waits for
the others' parts under OUTDIR/.imgprep-parts/RUN_ID, merges them (byte-identical to a one-host
run) and writes the lists and metadata. Multi-host outputs must be shared: s3:// or a shared disk.

\b
Failure: a one-line reason in /opt/ml/output/message, a non-zero exit status, no merged output."""
JOB_EPILOG = JOB_EXAMPLES + "\n\n" + CLUSTER_EPILOG

declare("cluster", [
    Option(("--opt-ml",), "The platform's /opt/ml root [env: IMGPREP_OPT_ML; default: /opt/ml].",
           envvar="IMGPREP_OPT_ML", metavar="DIR"),
    Option(("--num-parts",), "Number of hosts (other schedulers) [default: from resourceconfig.json, else 1].",
           int, low=1),
    Option(("--part-index",), "This host's part, 0-based (with --num-parts).", int, low=0),
    Option(("--distribution",), "How the image input is spread over hosts [default: from "
           "processingjobconfig.json].", ("FullyReplicated", "ShardedByS3Key")),
    Option(("--input-s3-uri",), "S3 prefix of a sharded folder input, listed to build the global lists "
           "[default: from processingjobconfig.json].", metavar="S3URI"),
    Option(("--run-id",), "Names the parts of this attempt [default: the ProcessingJobName]."),
    Option(("--work",), "Where hosts leave parts and markers [default: OUTDIR/.imgprep-parts/RUN_ID].",
           metavar="URI"),
    Option(("--join", "join_mode"), "auto: the first host joins; only: just join; no: just pack a part.",
           ("auto", "only", "no"), "auto", field="join", show_default=True),
    Option(("--join-timeout",), "Seconds the joiner waits for the other hosts.", float, 6 * 3600.0, low=0,
           show_default=True),
    Option(("--poll",), "Seconds between checks for the other hosts' markers.", float, 5.0, low=0.01,
           show_default=True),
])
declare(None, [Option(("--config", "config_file"), "JSON (or YAML, with PyYAML) file of option values; "
                      "command-line options win.", metavar="FILE")])
TARGETS["cluster"] = ("cluster", "imgprep.processing.job:Cluster")
CLUSTER = ("@cluster", "config_file")


def config_keys(command: click.Command) -> dict[str, str]:
    """A config file's keys for ``command``: each option's parameter name and its long flag's
    (``output`` and ``outdir``, ``classes`` and ``class_list``, ``crowd`` and ``include_crowd``)."""
    keys: dict[str, str] = {}
    by_name = {o.name: o for o in OPTIONS.values()}
    for param in command.params:
        if param.name is None or param.name == "config_file":  # read before click parses (ProcessingGroup)
            continue
        keys[param.name] = param.name
        option = by_name.get(param.name)
        if option is not None and not option.argument:
            keys.setdefault(option.flag_name, param.name)
    return keys


def _take_config(args: list[str]) -> tuple[str | None, list[str]]:
    """The ``--config FILE`` value, and the arguments without it (it may stand before the command)."""
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1], args[:i] + args[i + 2 :]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1], args[:i] + args[i + 1 :]
    return None, args


class ProcessingGroup(click.Group):
    """A group whose ``--config FILE`` (anywhere in the arguments) supplies option defaults."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        path, args = _take_config(list(args))
        if path is not None:
            data = load_options_file(path)
            command = str(data.pop("command", "") or "")
            named = next((a for a in args if a in self.commands), None)
            command = named or command
            if command not in self.commands:
                raise UsageError(f"{path}: say which job to run: \"command\": \"prepare\" or \"pack\"")
            keys = config_keys(self.commands[command])
            values = {}
            for key, value in data.items():
                if key not in keys:
                    raise UsageError(f"{path}: unknown option {key!r} for processing {command}")
                values[keys[key]] = value
            ctx.default_map = {**(ctx.default_map or {}), command: values}
            if named is None:
                # `--config FILE` alone: run the file's command, with the file's option values.
                args = [command, *args]
        return super().parse_args(ctx, args)


@click.group(cls=ProcessingGroup, epilog=CLUSTER_EPILOG)
def processing() -> None:
    """Run inside a SageMaker Processing container (or any scheduler): prepare or pack on N hosts.

    \b
    Examples (container arguments):
      prepare caltech /opt/ml/processing/input/data -o s3://bucket/caltech/ --resize 256
      pack /opt/ml/processing/input/lists/train.lst --root /opt/ml/processing/input/images \\
          -o s3://bucket/out/train
      --config /opt/ml/processing/input/config/job.json
    """



def check_job_arguments(args: list[str]) -> None:
    """Parse a job's arguments as the container will, without running it, so ``imgprep launch``
    refuses a misspelt option or a bad value before an instance is paid for.  Arguments naming a
    ``--config`` file are left to the job: the file lives in the container."""
    if any(a == "--config" or a.startswith("--config=") for a in args):
        return
    prog = "python -m imgprep.processing"
    with processing.make_context(prog, list(args)) as ctx:
        protected = getattr(ctx, "_protected_args", None)  # click 8.2; 8.1 names it protected_args
        rest = [*(ctx.protected_args if protected is None else protected), *ctx.args]
        if not rest:
            raise click.UsageError("no job: give 'prepare ...' or 'pack ...' after --", ctx=ctx)
        name, command, sub = processing.resolve_command(ctx, rest)
        if command is not None:  # resolve_command itself refuses an unknown job
            command.make_context(name or "", sub, parent=ctx).close()

def _echo(quiet: bool) -> Callable[[str], None] | None:
    return None if quiet else functools.partial(click.echo, err=True)


@processing.command("prepare", cls=KindCommand, epilog=JOB_EPILOG)
@options(*DATASET, "image_root", "output_format", *PACK, *CLUSTER, *LINKS, build=("dataset", *BUILD_PACK, "cluster"))
def processing_prepare(kind: str, input: str, outdir: str, image_root: str | None, output_format: str,
                       **built: Any) -> None:
    """`imgprep prepare` as a (multi-host) job: lists, metadata and OUTDIR/<split>.rec + .idx (or,
    with --format images, image channels: each host writes its share, the join the lists)."""
    from imgprep.processing.job import Job, run_job

    quiet = built["options"].quiet
    job = Job("prepare", outdir, built["spec"], built["options"], kind=kind, input=input, image_root=image_root,
              convert=built["convert_options"], output_format=output_format, storage=built["storage"])
    _report(run_job(job, built["cluster"], _echo(quiet)), quiet)


@processing.command("pack", epilog=JOB_EPILOG)
@options("lists", "pack_root", "output", *PACK, *CLUSTER, *LINKS, build=(*BUILD_PACK, "cluster"))
def processing_pack(lists: tuple[str, ...], root: str, output: str, **built: Any) -> None:
    """`imgprep pack` as a (multi-host) job: the lists' images into OUT.rec + OUT.idx."""
    from imgprep.processing.job import Job, run_job

    quiet = built["options"].quiet
    job = Job("pack", output, built["spec"], built["options"], lists=tuple(lists), root=root,
              storage=built["storage"])
    _report(run_job(job, built["cluster"], _echo(quiet)), quiet)


def _report(result: Any, quiet: bool) -> None:
    if quiet:
        return
    done = "joined" if result.joined else "packed"
    click.echo(f"{result.host}: part {result.part_index + 1} of {result.num_parts} {done} "
               f"({result.distribution})", err=True)
    for uri in result.outputs:
        click.echo(f"  {uri}", err=True)


def _opt_ml_in(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--opt-ml" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--opt-ml="):
            return arg.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> NoReturn:
    """``python -m imgprep.processing``: every failure leaves its reason in /opt/ml/output/message."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        processing.main(args=args, prog_name="python -m imgprep.processing", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the platform needs a reason for every failure
        result = failure(exc)
        if result.bug:
            import traceback

            traceback.print_exc()  # the job's log is where a bug report starts
        reason = reword(exc) if isinstance(exc, click.ClickException) else result.reason
        if reason:  # run_job wrote the message already; the same line again is harmless
            write_message(opt_ml_root(_opt_ml_in(args)), reason)
            click.echo(f"imgprep: error: {reason}", err=True)
        sys.exit(result.status)
    sys.exit(0)
