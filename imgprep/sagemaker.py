"""Launch imgprep as a SageMaker Processing job: build the CreateProcessingJob request, then submit it.

The request is built here as plain data (so ``imgprep launch --dry-run`` can print exactly what
would be sent, and tests can check it against botocore's service model); submitting goes through
the ``sagemaker`` SDK's session when the SDK is installed (it also finds the execution role in
notebooks), else through a plain boto3 client.  The container runs ``python -m imgprep.processing``
with the job arguments; see docs/processing.md.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imgprep.errors import ImgprepError, UsageError

ENTRYPOINT = ("python", "-m", "imgprep.processing")
INPUT_ROOT = "/opt/ml/processing/input"
OUTPUT_ROOT = "/opt/ml/processing/output"
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_TERMINAL = ("Completed", "Failed", "Stopped")


class LaunchError(ImgprepError):
    """SageMaker refused or failed the request."""


@dataclass(frozen=True)
class Channel:
    """An S3 prefix mounted at ``/opt/ml/processing/{input,output}/<name>``."""

    name: str
    s3_uri: str
    distribution: str = "FullyReplicated"  # inputs only

    def __post_init__(self) -> None:
        if not _CHANNEL_NAME.match(self.name):
            raise UsageError(f"channel name {self.name!r} must be letters, digits, '-', '_' or '.'")
        if not self.s3_uri.startswith("s3://") or len(self.s3_uri) <= 5:
            raise UsageError(f"channel {self.name}: {self.s3_uri!r} is not an s3:// URI")
        if self.distribution not in DISTRIBUTIONS:
            raise UsageError(f"channel {self.name}: distribution must be one of {', '.join(DISTRIBUTIONS)}")


def parse_channel(text: str, distribution: str = "FullyReplicated") -> Channel:
    """``NAME=s3://bucket/prefix`` -> :class:`Channel`."""
    name, sep, uri = text.partition("=")
    if not sep:
        raise UsageError(f"{text!r} is not NAME=s3://bucket/prefix")
    return Channel(name.strip(), uri.strip(), distribution)


def default_job_name(prefix: str = "imgprep") -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def _output_argument(arguments: Sequence[str]) -> str | None:
    for i, arg in enumerate(arguments):
        if arg in ("-o", "--output") and i + 1 < len(arguments):
            return arguments[i + 1]
        if arg.startswith("--output="):
            return arg.split("=", 1)[1]
    return None


def _check_job(name: str, image_uri: str, role_arn: str) -> None:
    if not _JOB_NAME.match(name):
        raise UsageError(f"job name {name!r}: 1-63 letters, digits and hyphens, starting with a letter or digit")
    if not image_uri:
        raise UsageError("the job needs an image URI (--image)")
    if not role_arn:
        raise UsageError("the job needs an IAM role ARN (--role)")


def _check_resources(instance_count: int, volume_size_gb: int, max_runtime_s: int) -> None:
    if not 1 <= instance_count <= 100:
        raise UsageError(f"instance count must be 1..100, got {instance_count}")
    if not 1 <= volume_size_gb <= 16384:
        raise UsageError(f"volume size must be 1..16384 GB, got {volume_size_gb}")
    if not 1 <= max_runtime_s <= 777600:
        raise UsageError(f"max runtime must be 1..777600 seconds, got {max_runtime_s}")


def processing_job(
    *,
    image_uri: str,
    role_arn: str,
    arguments: Sequence[str],
    inputs: Sequence[Channel] = (),
    outputs: Sequence[Channel] = (),
    instance_count: int = 1,
    instance_type: str = "ml.c5.2xlarge",
    volume_size_gb: int = 30,
    max_runtime_s: int = 24 * 3600,
    job_name: str | None = None,
    environment: Mapping[str, str] | None = None,
    entrypoint: Sequence[str] = ENTRYPOINT,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``CreateProcessingJob`` request (boto3 keyword arguments) for an imgprep job.

    ``arguments`` are the container's arguments (``prepare caltech /opt/ml/processing/input/data
    -o s3://...``).  A multi-instance job must write to ``s3://`` (local outputs are per host), so
    that is checked here, before anything is paid for.
    """
    name = job_name or default_job_name()
    _check_job(name, image_uri, role_arn)
    _check_resources(instance_count, volume_size_gb, max_runtime_s)
    names = [c.name for c in inputs] + [c.name for c in outputs]
    if len(set(names)) != len(names):
        raise UsageError("input and output channel names must be unique")
    target = _output_argument(arguments)
    if instance_count > 1 and target is not None and not target.startswith("s3://"):
        raise UsageError(
            f"a {instance_count}-instance job must write to s3:// (got -o {target}): each instance's "
            "/opt/ml/processing/output is its own, so the hosts could not be joined"
        )
    request: dict[str, Any] = {
        "ProcessingJobName": name,
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": int(instance_count),
                "InstanceType": instance_type,
                "VolumeSizeInGB": int(volume_size_gb),
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": int(max_runtime_s)},
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": list(entrypoint),
            "ContainerArguments": [str(a) for a in arguments],
        },
        "RoleArn": role_arn,
    }
    if inputs:
        request["ProcessingInputs"] = [
            {
                "InputName": c.name,
                "S3Input": {
                    "S3Uri": c.s3_uri,
                    "LocalPath": f"{INPUT_ROOT}/{c.name}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": c.distribution,
                },
            }
            for c in inputs
        ]
    if outputs:
        request["ProcessingOutputConfig"] = {
            "Outputs": [
                {
                    "OutputName": c.name,
                    "S3Output": {"S3Uri": c.s3_uri, "LocalPath": f"{OUTPUT_ROOT}/{c.name}", "S3UploadMode": "EndOfJob"},
                }
                for c in outputs
            ]
        }
    if environment:
        request["Environment"] = {str(k): str(v) for k, v in environment.items()}
    if tags:
        request["Tags"] = [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return request


def _client(region: str | None) -> Any:
    try:
        import sagemaker
    except ImportError:
        sagemaker = None
    try:
        import boto3
    except ImportError:
        raise UsageError("launching needs boto3 (pip install boto3) or the sagemaker SDK") from None
    if sagemaker is not None:
        return sagemaker.Session(boto_session=boto3.Session(region_name=region)).sagemaker_client
    return boto3.client("sagemaker", region_name=region)


def execution_role() -> str:
    """The notebook's execution role, via the sagemaker SDK (the only way to find it without --role)."""
    try:
        import sagemaker
    except ImportError:
        raise UsageError("--role is required (without the sagemaker SDK the notebook's role cannot be found)") from None
    return str(sagemaker.get_execution_role())


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def submit(request: Mapping[str, Any], *, region: str | None = None, wait: bool = False, poll: float = 30.0) -> str:
    """Send the request; return the job ARN (with ``wait``, after the job ended successfully)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

    try:
        client = _client(region)
    except NoRegionError:  # the user's set-up, not a bug: one line that says what to give
        raise UsageError("no AWS region for SageMaker: give --region (or set AWS_DEFAULT_REGION)") from None
    try:
        arn = str(client.create_processing_job(**request)["ProcessingJobArn"])
    except (BotoCoreError, ClientError) as exc:
        raise LaunchError(f"CreateProcessingJob failed: {_first_line(exc)}") from None
    if not wait:
        return arn
    name = request["ProcessingJobName"]
    while True:
        try:
            job = client.describe_processing_job(ProcessingJobName=name)
        except (BotoCoreError, ClientError) as exc:
            raise LaunchError(f"DescribeProcessingJob failed: {_first_line(exc)}") from None
        status = job.get("ProcessingJobStatus")
        if status in _TERMINAL:
            if status != "Completed":
                reason = job.get("ExitMessage") or job.get("FailureReason") or "no reason given"
                raise LaunchError(f"processing job {name} {status.lower()}: {reason}")
            return arn
        time.sleep(poll)
