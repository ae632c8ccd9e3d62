"""``imgprep launch``: start a SageMaker Processing job that runs ``python -m imgprep.processing``.

The job's own command (``imgprep processing``) lives in :mod:`imgprep.processing.command`.
"""

from __future__ import annotations

import json

import click

from imgprep.errors import UsageError


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
@click.option("--image", "image_uri", required=True, help="The imgprep job image (see the Dockerfile).")
@click.option("--role", "role_arn", default=None, help="IAM role ARN [default: the notebook's, via the SDK].")
@click.option("--instance-count", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--instance-type", default="ml.c5.2xlarge", show_default=True)
@click.option("--volume-size", type=click.IntRange(1, 16384), default=30, show_default=True, help="GB per instance.")
@click.option("--max-runtime", type=click.IntRange(1, 777600), default=24 * 3600, show_default=True,
              help="Seconds before SageMaker stops the job.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=S3URI",
              help="FullyReplicated input mounted at /opt/ml/processing/input/NAME (repeatable).")
@click.option("--sharded-input", "sharded", multiple=True, metavar="NAME=S3URI",
              help="ShardedByS3Key input: each instance receives a disjoint share of the objects.")
@click.option("--output", "outputs", multiple=True, metavar="NAME=S3URI",
              help="Upload /opt/ml/processing/output/NAME at the end of the job (repeatable).")
@click.option("--env", "environment", multiple=True, metavar="KEY=VALUE", help="Container environment.")
@click.option("--job-name", default=None, help="[default: imgprep-YYYYmmdd-HHMMSS]")
@click.option("--region", default=None, help="AWS region [default: the session's].")
@click.option("--dry-run", is_flag=True, help="Print the request as JSON; send nothing.")
@click.option("--wait", is_flag=True, help="Wait for the job to end; fail with its ExitMessage.")
@click.argument("arguments", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- JOB ARGUMENTS")
def launch(
    image_uri: str, role_arn: str | None, instance_count: int, instance_type: str, volume_size: int,
    max_runtime: int, inputs: tuple[str, ...], sharded: tuple[str, ...], outputs: tuple[str, ...],
    environment: tuple[str, ...], job_name: str | None, region: str | None, dry_run: bool, wait: bool,
    arguments: tuple[str, ...],
) -> None:
    """Start a SageMaker Processing job that runs `python -m imgprep.processing JOB ARGUMENTS`."""
    from imgprep.sagemaker import execution_role, parse_channel, processing_job, submit

    env = {}
    for item in environment:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {item!r} is not KEY=VALUE")
        env[key] = value
    request = processing_job(
        image_uri=image_uri,
        role_arn=role_arn or ("arn:aws:iam::000000000000:role/DRY-RUN" if dry_run else execution_role()),
        arguments=list(arguments),
        inputs=[parse_channel(t) for t in inputs] + [parse_channel(t, "ShardedByS3Key") for t in sharded],
        outputs=[parse_channel(t) for t in outputs],
        instance_count=instance_count,
        instance_type=instance_type,
        volume_size_gb=volume_size,
        max_runtime_s=max_runtime,
        job_name=job_name,
        environment=env or None,
    )
    if dry_run:
        click.echo(json.dumps(request, indent=2))
        return
    arn = submit(request, region=region, wait=wait)
    click.echo(arn)
