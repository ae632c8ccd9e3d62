"""``imgprep inspect s3://...`` reads packed datasets and lists through the Store (issue 29.6),
against the SeaweedFS server the suite starts: the same findings as the local copy, and the
fingerprints the dataset record keeps read by range, not decoded."""

from __future__ import annotations

import json

import imgfactory
import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

from imgprep.api import prepare

BUCKET = "inspectsrc"


@pytest.fixture(scope="module")
def uploaded(seaweed: S3Server, tmp_path_factory):
    root = tmp_path_factory.mktemp("s3inspect")
    src = root / "src"
    for ci, name in enumerate("ab"):
        for i in range(6):
            imgfactory.write(src / name / f"img_{i}.jpg", imgfactory.encode(imgfactory.photo(120, 90, seed=ci * 50 + i),
                                                                           "JPEG"))
    imgfactory.write(src / "b" / "copy.jpg", (src / "a" / "img_0.jpg").read_bytes())
    out = root / "out"
    prepare("folders", src, out, split="train=0.5,val=0.5", resize=64, echo=lambda s: None)
    client = seaweed.client()
    client.create_bucket(Bucket=BUCKET)
    for path in out.iterdir():
        client.put_object(Bucket=BUCKET, Key=f"out/{path.name}", Body=path.read_bytes())
    for path in src.rglob("*.jpg"):
        client.put_object(Bucket=BUCKET, Key=f"imgs/{path.relative_to(src)}", Body=path.read_bytes())
    client.put_object(Bucket=BUCKET, Key="lists/val.lst", Body=(out / "val.lst").read_bytes())
    return out, src


def _summary(text: str) -> dict:
    return json.loads(text)["summary"]


def test_inspect_of_an_s3_dataset_equals_the_local_one_and_reads_its_fingerprints(seaweed, uploaded, imgprep_cli):
    out, _ = uploaded
    local = imgprep_cli("inspect", out, "--json").stdout
    remote = imgprep_cli("inspect", f"s3://{BUCKET}/out/", "--json", "--endpoint-url", seaweed.endpoint_url).stdout
    assert _summary(remote) == _summary(local)
    assert _summary(remote)["images"] == 13 and _summary(remote)["duplicate_groups"] == 1
    assert json.loads(remote)["notes"] == ["fingerprints: read from train.prints, val.prints (as prepare took them; "
                                           "no image decoded)"]
    text = imgprep_cli("inspect", f"s3://{BUCKET}/out/", "--endpoint-url", seaweed.endpoint_url).stdout
    assert f"inspect s3://{BUCKET}/out: 13 images in 2 split(s)" in text


def test_the_api_inspects_an_s3_dataset_through_the_store_it_is_given(seaweed, uploaded, imgprep_cli, monkeypatch):
    """``imgprep.inspect(..., storage_options=...)`` reads through that store, not the environment's."""
    from imgprep.api import inspect

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    out, _ = uploaded
    found = inspect(f"s3://{BUCKET}/out/", storage_options={"endpoint_url": seaweed.endpoint_url})
    assert found.to_json()["summary"] == _summary(imgprep_cli("inspect", out, "--json").stdout)


def test_inspect_of_an_s3_list_reads_its_images_under_root(seaweed, uploaded, imgprep_cli):
    out, _ = uploaded
    local = imgprep_cli("inspect", out / "val.lst", "--root", uploaded[1], "--json").stdout
    remote = imgprep_cli("inspect", f"s3://{BUCKET}/lists/val.lst", "--root", f"s3://{BUCKET}/imgs", "--json",
                         "--endpoint-url", seaweed.endpoint_url).stdout
    assert _summary(remote) == _summary(local) and _summary(remote)["images"] > 0


def test_a_missing_s3_prefix_is_one_line(seaweed, uploaded, imgprep_cli):
    done = imgprep_cli("inspect", f"s3://{BUCKET}/nothing/", "--endpoint-url", seaweed.endpoint_url, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(f"s3://{BUCKET}/nothing: no such file or prefix")


def test_a_sharded_split_is_one_split_locally_and_on_s3(seaweed, uploaded, imgprep_cli, tmp_path):
    """``train-00000.rec``, ``train-00001.rec``... are the split ``train`` (as the reader opens it):
    copies in two of its shards are no leak, and its fingerprint file covers every shard."""
    _, src = uploaded
    out = tmp_path / "sharded"
    prepare("folders", src, out, split="train=0.5,val=0.5", resize=64, shard_records=2, echo=lambda s: None)
    whole = tmp_path / "whole"
    prepare("folders", src, whole, split="train=0.5,val=0.5", resize=64, echo=lambda s: None)
    assert (out / "train-00001.rec").exists() and not (out / "train.rec").exists()
    local = json.loads(imgprep_cli("inspect", out, "--json").stdout)
    assert [s["name"] for s in local["splits"]] == ["train", "val"]
    assert local["summary"] == json.loads(imgprep_cli("inspect", whole, "--json").stdout)["summary"]
    assert local["notes"] == ["fingerprints: read from train.prints, val.prints (as prepare took them; "
                              "no image decoded)"]
    client = seaweed.client()
    for path in out.iterdir():
        client.put_object(Bucket=BUCKET, Key=f"sharded/{path.name}", Body=path.read_bytes())
    remote = json.loads(imgprep_cli("inspect", f"s3://{BUCKET}/sharded/", "--json", "--endpoint-url",
                                    seaweed.endpoint_url).stdout)
    assert remote["summary"] == local["summary"] and remote["notes"] == local["notes"]


def test_a_sharded_split_without_fingerprints_is_decoded_shard_by_shard(uploaded, imgprep_cli, tmp_path):
    out, src = uploaded
    sharded = tmp_path / "packed"
    sharded.mkdir()
    imgprep_cli("pack", out / "train.lst", "--root", src, "-o", sharded / "train", "--resize", "64",
                "--shard-records", "2", "-q")
    found = json.loads(imgprep_cli("inspect", sharded, "--root", src, "--json").stdout)
    assert [s["name"] for s in found["splits"]] == ["train"]
    assert found["summary"]["images"] == len((out / "train.lst").read_text().splitlines())
    assert "decoded every record" in found["notes"][0]
