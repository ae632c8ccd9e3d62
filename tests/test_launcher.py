"""``imgprep launch --dry-run`` / ``processing_job``: the request must fit botocore's CreateProcessingJob shape."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from imgprep.errors import UsageError
from imgprep.sagemaker import Channel, processing_job

botocore_session = pytest.importorskip("botocore.session")

_PY_TYPES = {
    "string": str,
    "integer": int,
    "long": int,
    "boolean": bool,
    "float": (int, float),
    "double": (int, float),
    "timestamp": str,
}


def shape_errors(shape: Any, value: Any, where: str = "request") -> list[str]:
    """Every way ``value`` departs from ``shape``: unknown or missing members, wrong types."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{where}: expected a structure, got {type(value).__name__}"]
        errors = [f"{where}: unknown member {name!r}" for name in value if name not in shape.members]
        errors += [f"{where}: missing required {name!r}" for name in shape.required_members if name not in value]
        for name, member in value.items():
            if name in shape.members:
                errors += shape_errors(shape.members[name], member, f"{where}.{name}")
        return errors
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [e for i, item in enumerate(value) for e in shape_errors(shape.member, item, f"{where}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {type(value).__name__}"]
        errors = []
        for key, item in value.items():
            errors += shape_errors(shape.key, key, f"{where} key")
            errors += shape_errors(shape.value, item, f"{where}[{key!r}]")
        return errors
    expected = _PY_TYPES.get(kind)
    if expected is None:
        return [f"{where}: unhandled shape type {kind}"]
    if isinstance(value, bool) and kind != "boolean":
        return [f"{where}: expected {kind}, got bool"]
    if not isinstance(value, expected):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        return [f"{where}: {value!r} is not one of {enum}"]
    return []


@pytest.fixture(scope="module")
def create_shape() -> Any:
    model = botocore_session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateProcessingJob").input_shape


def example(**kw: Any) -> dict[str, Any]:
    args = dict(
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/imgprep:latest",
        role_arn="arn:aws:iam::123456789012:role/SageMakerRole",
        arguments=["prepare", "caltech", "/opt/ml/processing/input/data", "-o", "s3://b/out/", "--resize", "256"],
        inputs=[Channel("data", "s3://b/256_ObjectCategories/", "ShardedByS3Key"), Channel("cfg", "s3://b/cfg/")],
        outputs=[Channel("logs", "s3://b/logs/")],
        instance_count=3,
        job_name="imgprep-test-1",
        environment={"IMGPREP_NATIVE": "1"},
        tags={"project": "imgprep"},
    )
    args.update(kw)
    return processing_job(**args)


def test_request_matches_the_service_model(create_shape: Any) -> None:
    request = example()
    assert shape_errors(create_shape, request) == []
    inputs = request["ProcessingInputs"]
    assert inputs[0]["S3Input"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert inputs[0]["S3Input"]["LocalPath"] == "/opt/ml/processing/input/data"
    assert request["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", "imgprep.processing"]
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 3


def test_the_checker_catches_mistakes(create_shape: Any) -> None:
    request = example()
    request["ProcessingResources"]["ClusterConfig"]["InstanceCont"] = 2  # misspelled
    del request["RoleArn"]
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = "3600"
    request["ProcessingInputs"][0]["S3Input"]["S3DataDistributionType"] = "Sharded"
    errors = shape_errors(create_shape, request)
    assert any("unknown member 'InstanceCont'" in e for e in errors)
    assert any("missing required 'RoleArn'" in e for e in errors)
    assert any("MaxRuntimeInSeconds: expected integer" in e for e in errors)
    assert any("'Sharded' is not one of" in e for e in errors)


def test_dry_run_prints_the_request(create_shape: Any) -> None:
    from imgprep.cli.processing import launch

    result = CliRunner().invoke(launch, [
        "--dry-run", "--image", "img:1", "--role", "arn:aws:iam::1:role/R", "--instance-count", "2",
        "--sharded-input", "data=s3://b/images/", "--input", "lists=s3://b/lists/", "--job-name", "j-1",
        "--env", "A=1", "--", "pack", "/opt/ml/processing/input/lists/train.lst",
        "--root", "/opt/ml/processing/input/data", "-o", "s3://b/out/train",
    ])
    assert result.exit_code == 0, result.output
    request = json.loads(result.output)
    assert shape_errors(create_shape, request) == []
    assert request["AppSpecification"]["ContainerArguments"][0] == "pack"
    assert [i["S3Input"]["S3DataDistributionType"] for i in request["ProcessingInputs"]] == [
        "FullyReplicated", "ShardedByS3Key"]
    assert request["Environment"] == {"A": "1"}


@pytest.mark.parametrize(
    "change,message",
    [
        ({"job_name": "bad_name"}, "job name"),
        ({"instance_count": 0}, "instance count"),
        ({"arguments": ["prepare", "folders", "in", "-o", "/opt/ml/processing/output/data"]}, "must write to s3://"),
        ({"outputs": [Channel("data", "s3://b/x/")]}, "unique"),
    ],
    ids=["job-name", "count", "local-output", "duplicate-channel"],
)
def test_bad_requests_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        example(**change)


def test_channel_validation() -> None:
    with pytest.raises(UsageError, match="s3://"):
        Channel("data", "/local/path")
    with pytest.raises(UsageError, match="distribution"):
        Channel("data", "s3://b/p", "Replicated")


@pytest.mark.parametrize(
    "job,expect",
    [
        (["prepare", "folders", "/opt/ml/processing/input/data", "-o", "s3://b/out", "--bogus"], "--bogus"),
        (["prepare", "folders", "/opt/ml/processing/input/data", "-o", "s3://b/out", "--resize", "-3"], "--resize"),
        (["pakc", "x.lst"], "pakc"),
    ],
    ids=["unknown-option", "bad-value", "unknown-job"],
)
def test_launch_refuses_job_arguments_the_container_would_refuse(job: list[str], expect: str) -> None:
    """A typo after -- fails here, in one line, not on the paid instance."""
    proc = subprocess.run(
        [sys.executable, "-c", "from imgprep.cli.main import main; main()", "launch", "--dry-run", "--image", "img:1",
         "--role", "arn:aws:iam::1:role/R", "--", *job], capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert len(lines) == 1 and lines[0].startswith("imgprep: error: ") and expect in lines[0], proc.stderr
