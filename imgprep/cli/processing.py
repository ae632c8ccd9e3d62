"""``imgprep launch``: start a SageMaker Processing job that runs ``python -m imgprep.processing``.

The job's own command (``imgprep processing``) lives in :mod:`imgprep.processing.command`.
"""

from __future__ import annotations

import json
from typing import Any

import click

from imgprep.errors import UsageError
from imgprep.options import Option, declare, options

_LAUNCH = [
    Option(("--image", "image_uri"), "The imgprep job image (see the Dockerfile).", required=True),
    Option(("--role", "role_arn"), "IAM role ARN [default: the notebook's, via the SDK]."),
    Option(("--instance-count",), value=int, default=1, low=1, high=100, show_default=True),
    Option(("--instance-type",), default="ml.c5.2xlarge", show_default=True),
    Option(("--volume-size",), "GB per instance.", int, 30, low=1, high=16384, show_default=True),
    Option(("--max-runtime",), "Seconds before SageMaker stops the job.", int, 24 * 3600, low=1, high=777600,
           show_default=True),
    Option(("--input", "inputs"), "FullyReplicated input mounted at /opt/ml/processing/input/NAME (repeatable).",
           multiple=True, metavar="NAME=S3URI"),
    Option(("--sharded-input", "sharded"), "ShardedByS3Key input: each instance receives a disjoint share of "
           "the objects.", multiple=True, metavar="NAME=S3URI"),
    Option(("--output", "outputs"), "Upload /opt/ml/processing/output/NAME at the end of the job (repeatable).",
           multiple=True, metavar="NAME=S3URI"),
    Option(("--env", "environment"), "Container environment.", multiple=True, metavar="KEY=VALUE"),
    Option(("--job-name",), "[default: imgprep-YYYYmmdd-HHMMSS]", id="launch_job_name"),
    Option(("--region",), "AWS region [default: the session's]."),
    Option(("--dry-run",), "Print the request as JSON; send nothing.", bool, False),
    Option(("--wait",), "Wait for the job to end; fail with its ExitMessage.", bool, False),
    Option(("arguments",), value=click.UNPROCESSED, nargs=-1, required=True, metavar="-- JOB ARGUMENTS",
           argument=True),
]
declare("launch", _LAUNCH)


@click.command(
    context_settings={"ignore_unknown_options": True},
    epilog="""\b
Examples:
  # Caltech-256 on 4 instances, images sharded by key, straight to S3
  imgprep launch --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/imgprep:latest \\
      --role arn:aws:iam::123456789012:role/SageMakerRole --instance-count 4 \\
      --sharded-input data=s3://bucket/256_ObjectCategories/ -- \\
      prepare caltech /opt/ml/processing/input/data -o s3://bucket/caltech/ --resize 256

\b
  # print the CreateProcessingJob request instead of sending it
  imgprep launch --dry-run --image IMAGE --role ARN --input data=s3://bucket/fashion-mnist/ -- \\
      prepare mnist /opt/ml/processing/input/data -o s3://bucket/fmnist/ --color 0 --encoding png

\b
Everything after -- is the job's arguments (see 'imgprep processing --help').""",
)
@options(*(o.table_key for o in _LAUNCH))
def launch(arguments: tuple[str, ...], dry_run: bool, **given: Any) -> None:
    """Start a SageMaker Processing job that runs `python -m imgprep.processing JOB ARGUMENTS`."""
    from imgprep.processing.command import check_job_arguments
    from imgprep.sagemaker import execution_role, parse_channel, processing_job, submit

    check_job_arguments(list(arguments))
    request = processing_job(
        image_uri=given["image_uri"],
        role_arn=given["role_arn"] or ("arn:aws:iam::000000000000:role/DRY-RUN" if dry_run else execution_role()),
        arguments=list(arguments),
        inputs=[parse_channel(t) for t in given["inputs"]]
        + [parse_channel(t, "ShardedByS3Key") for t in given["sharded"]],
        outputs=[parse_channel(t) for t in given["outputs"]],
        instance_count=given["instance_count"],
        instance_type=given["instance_type"],
        volume_size_gb=given["volume_size"],
        max_runtime_s=given["max_runtime"],
        job_name=given["job_name"],
        environment=_environment(given["environment"]) or None,
    )
    if dry_run:
        click.echo(json.dumps(request, indent=2))
        return
    click.echo(submit(request, region=given["region"], wait=given["wait"]))


def _environment(items: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {item!r} is not KEY=VALUE")
        env[key] = value
    return env
