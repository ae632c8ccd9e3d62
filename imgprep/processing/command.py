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

from imgprep.options import dataset_options, links_option, pack_options

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

# config-file keys that differ from the parameter names
_ALIASES = {"prepare": {"output": "outdir", "classes": "class_list", "crowd": "include_crowd"}, "pack": {}}


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Where this run sits in the job; the command receives ``cluster: Cluster``."""
    options = [
        click.option("--opt-ml", envvar="IMGPREP_OPT_ML", default=None, metavar="DIR",
                     help="The platform's /opt/ml root [env: IMGPREP_OPT_ML; default: /opt/ml]."),
        click.option("--num-parts", type=click.IntRange(min=1), default=None,
                     help="Number of hosts (other schedulers) [default: from resourceconfig.json, else 1]."),
        click.option("--part-index", type=click.IntRange(min=0), default=None,
                     help="This host's part, 0-based (with --num-parts)."),
        click.option("--distribution", type=click.Choice(["FullyReplicated", "ShardedByS3Key"]), default=None,
                     help="How the image input is spread over hosts [default: from processingjobconfig.json]."),
        click.option("--input-s3-uri", default=None, metavar="S3URI",
                     help="S3 prefix of a sharded folder input, listed to build the global lists "
                          "[default: from processingjobconfig.json]."),
        click.option("--run-id", default=None,
                     help="Names the parts of this attempt [default: the ProcessingJobName]."),
        click.option("--work", default=None, metavar="URI",
                     help="Where hosts leave parts and markers [default: OUTDIR/.imgprep-parts/RUN_ID]."),
        click.option("--join", "join_mode", type=click.Choice(["auto", "only", "no"]), default="auto",
                     show_default=True, help="auto: the first host joins; only: just join; no: just pack a part."),
        click.option("--join-timeout", type=click.FloatRange(min=0), default=6 * 3600.0, show_default=True,
                     help="Seconds the joiner waits for the other hosts."),
        click.option("--poll", type=click.FloatRange(min=0.01), default=5.0, show_default=True,
                     help="Seconds between checks for the other hosts' markers."),
        click.option("--config", "config_file", default=None, metavar="FILE", expose_value=True,
                     help="JSON (or YAML, with PyYAML) file of option values; command-line options win."),
    ]
    for option in reversed(options):
        f = option(f)

    @functools.wraps(f)
    def wrapper(**kw: Any) -> Any:
        from imgprep.processing.job import Cluster

        kw.pop("config_file")
        kw["cluster"] = Cluster(
            opt_ml=kw.pop("opt_ml"),
            num_parts=kw.pop("num_parts"),
            part_index=kw.pop("part_index"),
            distribution=kw.pop("distribution"),
            input_s3_uri=kw.pop("input_s3_uri"),
            run_id=kw.pop("run_id"),
            work=kw.pop("work"),
            join=kw.pop("join_mode"),
            join_timeout=kw.pop("join_timeout"),
            poll=kw.pop("poll"),
        )
        return f(**kw)

    return wrapper


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
            from imgprep.errors import UsageError
            from imgprep.processing.config import load_options_file

            data = load_options_file(path)
            command = str(data.pop("command", "") or "")
            named = next((a for a in args if a in self.commands), None)
            command = named or command
            if command not in self.commands:
                raise UsageError(f"{path}: say which job to run: \"command\": \"prepare\" or \"pack\"")
            sub = self.commands[command]
            aliases = _ALIASES.get(command, {})
            known = {p.name for p in sub.params}
            values = {}
            for key, value in data.items():
                name = aliases.get(key, key)
                if name not in known or name == "config_file":
                    raise UsageError(f"{path}: unknown option {key!r} for processing {command}")
                values[name] = value
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


def _echo(quiet: bool) -> Callable[[str], None] | None:
    return None if quiet else functools.partial(click.echo, err=True)


@processing.command("prepare", epilog=JOB_EPILOG)
@dataset_options
@click.option("--image-root", default=None, metavar="DIR",
              help="Folder (or s3:// prefix) the image paths are relative to (coco: the images).")
@click.option("--format", "output_format", type=click.Choice(["recordio", "images"]), default="recordio",
              show_default=True, help="images: image channels train/, validation/ with train_lst/train.lst ... "
              "(each host writes its share of the images; the join writes the lists).")
@pack_options
@cluster_options
@links_option
def processing_prepare(
    kind: str, input: str, outdir: str, image_root: str | None, output_format: str, spec: Any, options: Any,
    convert_options: Any, cluster: Any,
) -> None:
    """`imgprep prepare` as a (multi-host) job: lists, metadata and OUTDIR/<split>.rec + .idx."""
    from imgprep.processing.job import Job, run_job

    job = Job("prepare", outdir, spec, options, kind=kind, input=input, image_root=image_root,
              convert=convert_options, output_format=output_format)
    _report(run_job(job, cluster, _echo(options.quiet)), options.quiet)


@processing.command("pack", epilog=JOB_EPILOG)
@click.argument("lists", nargs=-1, required=True, metavar="LST [LST ...]")
@click.option("--root", required=True, help="Directory (or s3:// prefix) the list's paths are relative to.")
@click.option("-o", "--output", required=True, help="Output prefix: OUT gives OUT.rec and OUT.idx.")
@pack_options
@cluster_options
@links_option
def processing_pack(lists: tuple[str, ...], root: str, output: str, spec: Any, options: Any, cluster: Any) -> None:
    """`imgprep pack` as a (multi-host) job: the lists' images into OUT.rec + OUT.idx."""
    from imgprep.processing.job import Job, run_job

    job = Job("pack", output, spec, options, lists=tuple(lists), root=root)
    _report(run_job(job, cluster, _echo(options.quiet)), options.quiet)


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
    from imgprep.exits import failure
    from imgprep.processing.config import opt_ml_root, write_message

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        processing.main(args=args, prog_name="python -m imgprep.processing", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the platform needs a reason for every failure
        result = failure(exc)
        if result.bug:
            import traceback

            traceback.print_exc()  # the job's log is where a bug report starts
        if result.reason:  # run_job wrote the message already; the same line again is harmless
            write_message(opt_ml_root(_opt_ml_in(args)), result.reason)
            click.echo(f"imgprep: error: {result.reason}", err=True)
        sys.exit(result.status)
    sys.exit(0)
