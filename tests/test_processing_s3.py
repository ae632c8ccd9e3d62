"""A 3-host Processing job on one machine: three ``/opt/ml`` roots, three processes, a loopback S3 server.

Every host runs ``python -m imgprep.processing`` with its own ``resourceconfig.json`` and
``processingjobconfig.json``; the merged output must equal a one-host ``prepare`` byte for byte, for a
FullyReplicated input (every host sees every image) and a ShardedByS3Key input (each host sees a
disjoint third and the class list comes from listing the input's S3 prefix).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import imgfactory
import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

import imgprep
from imgprep.formats.lst import read_lst
from imgprep.formats.recordio import RecordReader
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.packer import PackOptions
from imgprep.storage import Storage

pytestmark = pytest.mark.s3

HOSTS = ["algo-1", "algo-2", "algo-3"]
SPLIT = "train=0.5,val=0.5"
JOB_ARGS = ["--split", SPLIT, "--seed", "4", "--resize", "24", "-j", "1", "-q", "--poll", "0.1"]


def upload(server: S3Server, bucket: str, tree: Path, prefix: str) -> None:
    client = server.client()
    for path in sorted(tree.rglob("*")):
        if path.is_file():
            client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(tree)}", Body=path.read_bytes())


def objects(server: S3Server, bucket: str, prefix: str) -> dict[str, bytes]:
    client = server.client()
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            key = item["Key"]
            out[key[len(prefix) + 1 :]] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return out


def opt_ml(root: Path, host: str, job: str, local: Path, s3_uri: str, distribution: str) -> Path:
    config = root / "config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": HOSTS}))
    (config / "processingjobconfig.json").write_text(json.dumps({
        "ProcessingJobName": job,
        "ProcessingInputs": [{"InputName": "data", "S3Input": {
            "LocalPath": str(local), "S3Uri": s3_uri, "S3DataDistributionType": distribution,
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 3, "InstanceType": "ml.c5.xlarge"}},
    }))
    return root


def start_host(root: Path, local: Path, output: str, server: S3Server, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "imgprep.processing", "prepare", "folders", str(local), "-o", output,
           "--opt-ml", str(root), "--endpoint-url", server.endpoint_url, *JOB_ARGS, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        results.append((proc.returncode, err))
    return results


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    imgfactory.class_tree(root, ["ant", "bee", "cow", "doe"], 7, png_every=6)
    return root


@pytest.fixture
def proc_bucket(seaweed: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    # convert() writes lists and metadata without storage options: it finds the endpoint here.
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweed.endpoint_url)
    name = f"proc{os.getpid()}-{random.randrange(1 << 30)}"
    seaweed.client().create_bucket(Bucket=name)
    return name


def one_host(server: S3Server, dataset: Path, output: str) -> None:
    options = PackOptions(num_workers=1, quiet=True, progress=False, storage=Storage.from_options(**server.options))
    imgprep.prepare("folders", str(dataset), output, spec=TransformSpec(resize=24), options=options, split=SPLIT,
                    seed=4)


@pytest.mark.parametrize("distribution", ["FullyReplicated", "ShardedByS3Key"])
def test_three_hosts_match_one_host(seaweed: S3Server, proc_bucket: str, dataset: Path, tmp_path: Path,
                                    distribution: str) -> None:
    bucket = proc_bucket
    upload(seaweed, bucket, dataset, "input")
    one_host(seaweed, dataset, f"s3://{bucket}/one")
    if distribution == "ShardedByS3Key":
        # Each host receives a disjoint, scattered third of the objects, as ShardedByS3Key does.
        locals_ = [tmp_path / f"in{i}" for i in range(3)]
        pick = random.Random(5)
        for path in sorted(dataset.rglob("*")):
            if path.is_file():
                target = locals_[pick.randrange(3)] / path.relative_to(dataset)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    else:
        locals_ = [dataset] * 3
    job = f"job-{distribution}"
    procs = [
        start_host(opt_ml(tmp_path / f"optml{i}", host, job, locals_[i], f"s3://{bucket}/input", distribution),
                   locals_[i], f"s3://{bucket}/job", seaweed)
        for i, host in enumerate(HOSTS)
    ]
    for code, err in finish(procs):
        assert code == 0, err
    got, want = objects(seaweed, bucket, "job"), objects(seaweed, bucket, "one")
    assert sorted(got) == sorted(want)  # no part files or markers left behind
    assert got == want
    # every record exactly once, in list order
    for split in ("train", "val"):
        (tmp_path / f"{split}.rec").write_bytes(got[f"{split}.rec"])
        (tmp_path / f"{split}.idx").write_bytes(got[f"{split}.idx"])
        (tmp_path / f"{split}.lst").write_bytes(got[f"{split}.lst"])
        with RecordReader(tmp_path / f"{split}.rec", tmp_path / f"{split}.idx") as reader:
            assert reader.keys == [item.index for item in read_lst(tmp_path / f"{split}.lst")]
            assert sum(1 for _ in reader) == len(reader.keys)
    assert seaweed.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_strict_failure_fails_the_job(seaweed: S3Server, proc_bucket: str, dataset: Path, tmp_path: Path) -> None:
    bucket = proc_bucket
    bad = sorted(dataset.rglob("*.jpg"))[-1]
    bad.write_bytes(imgfactory.not_an_image())
    roots = [opt_ml(tmp_path / f"optml{i}", host, "job-strict", dataset, f"s3://{bucket}/input", "FullyReplicated")
             for i, host in enumerate(HOSTS)]
    procs = [start_host(root, dataset, f"s3://{bucket}/job", seaweed, "--strict") for root in roots]
    results = finish(procs)
    assert results[0][0] != 0 and any(code == 3 for code, _ in results[1:] + results[:1])
    message = (roots[0] / "output" / "message").read_text(encoding="utf-8")
    assert "failed" in message and "--strict" in message and message.count("\n") == 1
    left = objects(seaweed, bucket, "job")
    assert not [k for k in left if not k.startswith(".imgprep-parts/")], left  # nothing that looks like output


def test_a_killed_host_fails_the_job(seaweed: S3Server, proc_bucket: str, dataset: Path, tmp_path: Path) -> None:
    bucket = proc_bucket
    roots = [opt_ml(tmp_path / f"optml{i}", host, "job-killed", dataset, f"s3://{bucket}/input", "FullyReplicated")
             for i, host in enumerate(HOSTS)]
    victim = start_host(roots[2], dataset, f"s3://{bucket}/job", seaweed)
    os.killpg(victim.pid, signal.SIGKILL)  # gone before it could write any marker
    victim.communicate(timeout=60)
    procs = [start_host(roots[0], dataset, f"s3://{bucket}/job", seaweed, "--join-timeout", "3"),
             start_host(roots[1], dataset, f"s3://{bucket}/job", seaweed)]
    results = finish(procs)
    assert results[0][0] == 1 and results[1][0] == 0, results
    message = (roots[0] / "output" / "message").read_text(encoding="utf-8")
    assert "waiting for algo-3" in message
    left = objects(seaweed, bucket, "job")
    assert not [k for k in left if not k.startswith(".imgprep-parts/")], left
