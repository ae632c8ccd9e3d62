"""Verify a dataset: walk every shard, decode every payload in parallel, check the whole."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from imgprep.errors import ImageError
from imgprep.formats.lst import LstItem
from imgprep.formats.rioindex import CHUNK as INDEX_CHUNK
from imgprep.formats.rioindex import Index
from imgprep.formats.rioindex import read as read_index
from imgprep.imaging.decode import decode_all
from imgprep.layout.meter import meter
from imgprep.storage.base import Store
from imgprep.verify import pretrain, walk
from imgprep.verify.checksums import RecordSums, record_sums
from imgprep.verify.index import check_index
from imgprep.verify.ledger import Ledger
from imgprep.verify.location import Location
from imgprep.verify.report import Report
from imgprep.verify.target import Expectations, Shard, Target, resolve

BATCH = 64  # records per decode task: one native call (imaging.decode.decode_all) and one future each


def verify(path: str, *, num_classes: int | None = None, against: Sequence[LstItem] | None = None,
           against_name: str = "", workers: int | None = None, progress: bool | None = None,
           storage: Store, max_skipped: str | int | None = None, train: bool | None = None,
           channel_settings: bool = False) -> Report:
    """Check ``path`` (a ``.rec``, shard prefix or ``.dataset.json``) and return the report.

    Beyond the records themselves: ``hyperparameters.json`` and ``classes.json`` beside them
    against what the records hold (``num_training_samples`` when the split is the training one —
    named ``train`` or ``train=True`` —, ``num_classes``, ``multi_label``, ``image_shape`` against
    the smallest image, per-class counts); ``max_skipped`` (a count or ``"P%"``) fails a dataset
    whose pack skipped more images; ``channel_settings`` fills ``report.channel`` with the
    SageMaker ``InputDataConfig`` entry for it.
    """
    limit = pretrain.SkipLimit.parse(max_skipped)
    from imgprep.storage.probe import check_access

    check_access(storage, reads=[path])  # credentials, bucket: one line before anything is read
    target = resolve(path, storage, num_classes=num_classes)
    report = Report(path, shards=[s.rec for s in target.shards])
    report.checks = ["framing", "headers", "labels", "decode"]
    report.labels = _describe_labels(target.expect)
    ledger = Ledger(labels=against is not None)
    width: list[int] = []
    total = target.record.records if target.record is not None else None
    workers = workers or os.cpu_count() or 1
    with meter(f"verify {pretrain.split_name(target)}", total, "rec", progress=progress, leave=False) as bar, \
            ThreadPoolExecutor(workers) as pool:
        for shard in target.shards:
            _verify_shard(target, shard, report, pool, 4 * workers, ledger, width, bar.update)
    ledger.check_duplicates(report)
    if any(s.idx for s in target.shards):
        report.checks.append(".idx")
    if target.record is not None:
        report.checks.append("counts and checksums vs the dataset record")
    if against is not None:
        ledger.check_against(against, against_name, report)
        report.checks.append(f"records == {against_name}")
    report.label_width = width[0] if width else None
    split = pretrain.split_name(target)
    pretrain.check(target, report, split=split, label_counts=report.label_counts, max_skipped=limit, is_train=train)
    if channel_settings:
        report.channel = pretrain.channel_settings(target, split, report)
    return report


def _describe_labels(expect: Expectations) -> str:
    if expect.num_classes is None:
        return "num_classes unknown (give --num-classes): labels checked to be non-negative integers"
    kind = "multi-hot vectors" if expect.multi_hot else "class indices"
    return f"{kind} in [0, {expect.num_classes}) (num_classes from {expect.source})"


def _verify_shard(target: Target, shard: Shard, report: Report, pool: ThreadPoolExecutor, in_flight: int,
                  ledger: Ledger, width: list[int], tick: Callable[[int], Any]) -> None:
    """Walk one shard into ``report`` and ``ledger`` (which spans shards: ids, labels for --against)."""
    location, expect = target.location, target.expect
    if not location.exists(shard.rec):
        report.add(shard.rec, "is missing (the dataset record lists it)")
        return
    pending: list[Future[list[tuple[str, str | None, tuple[int, int, int] | None]]]] = []
    batch: list[walk.Record] = []
    index = _read_index(location, shard.idx) if shard.idx is not None and location.exists(shard.idx) else None
    walked = ledger.shard(shard.rec, index.ascending() if index is not None else None)
    labels = ledger.labels
    sums = record_sums(shard, index)
    with location.open(shard.rec) as stream:
        for ordinal, offset, payload in walk.records(stream, shard.rec, report):
            report.records += 1
            if sums is not None:
                sums.check(ordinal, offset, payload, shard.rec, report)
            record = walk.check_record(ordinal, offset, payload, shard.rec, expect, width, report)
            if record is None:
                continue
            ledger.add(walked, ordinal, offset, record.id, len(report.problems))
            report.count_labels(record.labels if record.flag else record.labels[:1], expect.multi_hot)
            if labels is not None:
                labels.add(record.labels if record.flag else record.labels[:1])
            batch.append(record)
            if len(batch) == BATCH:
                pending.append(pool.submit(_decode_batch, batch, expect))
                batch = []
                _drain(pending, report, tick, limit=in_flight)
        if batch:
            pending.append(pool.submit(_decode_batch, batch, expect))
        _drain(pending, report, tick, limit=0)
        if shard.expected is not None:
            _check_shard_entry(shard, stream, report, len(walked), sums)
    if index is not None:
        check_index(index, walked, report)
        if shard.expected is not None:
            _compare(index.name, index.size, index.sha256, shard.expected.idx_bytes, shard.expected.idx_sha256,
                     report)
    elif shard.idx is not None:
        report.add(shard.idx, "is missing (the dataset record lists it)")


def _read_index(location: Location, name: str) -> Index:
    """The ``.idx`` parsed as it streams in (never held whole)."""
    with location.open(name) as stream:
        return read_index(iter(lambda: stream.read(INDEX_CHUNK), b""), name)


def _drain(pending: list[Future[Any]], report: Report, tick: Callable[[int], Any], limit: int) -> None:
    """Collect finished decode batches in submission order until at most ``limit`` remain."""
    while len(pending) > limit:
        results = pending.pop(0).result()
        for where, problem, dims in results:
            if problem:
                report.add(where, problem)
            if dims is not None:
                report.decoded += 1
                report.sizes[dims] = report.sizes.get(dims, 0) + 1
        tick(len(results))


def _decode_batch(batch: Sequence[walk.Record], expect: Expectations
                  ) -> list[tuple[str, str | None, tuple[int, int, int] | None]]:
    out: list[tuple[str, str | None, tuple[int, int, int] | None]] = []
    for record, found in zip(batch, decode_all([record.image for record in batch])):
        if isinstance(found, ImageError):
            out.append((record.where, f"payload of {len(record.image)} bytes: {found.message}", None))
            continue
        dims = (found.width, found.height, found.channels)
        out.append((record.where, _shape_problem(dims, expect), dims))
    return out


def _shape_problem(dims: tuple[int, int, int], expect: Expectations) -> str | None:
    width, height, channels = dims
    if expect.channels is not None and channels != expect.channels:
        return f"image has {channels} channel(s), the dataset declares {expect.channels}"
    if expect.size is not None and (width, height) != tuple(expect.size):
        return f"image is {width}x{height}, the dataset declares {expect.size[0]}x{expect.size[1]}"
    if expect.shorter_side is not None and min(width, height) != expect.shorter_side:
        return f"image is {width}x{height}, the dataset declares a shorter side of {expect.shorter_side}"
    return None


def _check_shard_entry(shard: Shard, stream: Any, report: Report, records: int, sums: RecordSums | None) -> None:
    entry = shard.expected
    if entry is None:  # a shard the dataset record does not name has nothing to compare with
        return
    if records != entry.records:
        report.add(shard.rec, f"holds {records} records, the dataset record says {entry.records}")
    # A stream read in ranges (an S3 shard) hashed what the walk fetched: no second download.
    whole = getattr(getattr(stream, "raw", stream), "sha256", None)
    sha = whole() if whole is not None else None
    if sha is not None:
        _compare(shard.rec, stream.seek(0, 2), sha, entry.rec_bytes, entry.rec_sha256, report)
        return
    stream.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    named = f" ({sums.damaged} damaged record(s) named above)" if sums is not None and sums.damaged else ""
    _compare(shard.rec, size, digest.hexdigest(), entry.rec_bytes, entry.rec_sha256, report, named)


def _compare(name: str, size: int, sha: str, want_size: int, want_sha: str, report: Report,
             named: str = "") -> None:
    if size != want_size:
        report.add(name, f"is {size} bytes, the dataset record says {want_size}")
    elif sha != want_sha:
        report.add(name, f"SHA-256 {sha[:12]}... differs from the dataset record's {want_sha[:12]}... "
                         f"(the file changed after it was packed){named}")
