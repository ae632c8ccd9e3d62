"""Completion markers and the join: the hosts' part files back into one ``.rec`` + ``.idx`` per channel.

Each host packs its share into ``WORK/<channel>/part-<i>.rec``/``.idx`` and, only after those are
committed, writes ``WORK/host-<i>.done`` (records, bytes and skipped images per channel); a host
that fails writes ``WORK/host-<i>.failed`` with its reason instead.  The joiner waits for every
marker (failing at once on a ``.failed`` one, or after a timeout for a host that vanished), checks
that every list item is packed by exactly one host or reported skipped, and writes the merged
output — which is therefore either complete or absent, never short.

Merging keeps the one-host order (list order): parts that are consecutive runs of it
(``FullyReplicated`` slices) are concatenated, server-side on S3; otherwise (``ShardedByS3Key``) the
parts are streamed and interleaved record by record (a k-way merge by list position), holding one
record per part in memory.  Records are copied as framed bytes, never re-encoded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from imgprep.errors import FormatError, ImgprepError, StorageError
from imgprep.formats import checksums
from imgprep.formats.dataset import DatasetRecord, ShardEntry, to_json
from imgprep.formats.imagesize import SizeRange
from imgprep.formats.lst import LstItem
from imgprep.formats.prints import prints_name
from imgprep.formats.recordio import format_index_line, parse_index
from imgprep.layout.concat import concatenate
from imgprep.layout.files import publish_single, sha256
from imgprep.layout.index import JoinedIndex
from imgprep.layout.meter import Off, meter
from imgprep.layout.names import record_name, shard_names
from imgprep.layout.shards import find_shards
from imgprep.layout.skipped import Skipped, write_report
from imgprep.packing.packer import list_ref
from imgprep.packing.prints_file import join_prints
from imgprep.packing.publish import Publisher
from imgprep.storage.base import Output, Store, join

PARTS_FOLDER = ".imgprep-parts"
DONE, FAILED = "done", "failed"
_CHUNK = 8 * 1024 * 1024


class JobFailedError(ImgprepError):
    """Another host failed or never finished, so the job cannot produce a complete output."""


def part_prefix(work: str, channel: str, index: int) -> str:
    return join(join(work, channel), f"part-{index:05d}")


def marker_uri(work: str, index: int, state: str) -> str:
    return join(work, f"host-{index:05d}.{state}")


# --------------------------------------------------------------------------- markers


def write_marker(storage: Store, work: str, index: int, state: str, payload: dict[str, Any]) -> str:
    uri = marker_uri(work, index, state)
    storage.write_text(uri, json.dumps(payload, sort_keys=True, indent=1) + "\n")
    return uri


def wait_for_hosts(
    work: str,
    count: int,
    storage: Store,
    *,
    hosts: Sequence[str] = (),
    timeout: float = 6 * 3600.0,
    poll: float = 5.0,
    known: dict[int, dict[str, Any]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """Wait until every host has written its ``.done`` marker; return their payloads in host order.

    Raises :class:`JobFailedError` with the host's own reason as soon as one wrote ``.failed``,
    or after ``timeout`` seconds naming the hosts still missing (killed, or lost).
    """
    done: dict[int, dict[str, Any]] = dict(known or {})
    deadline = time.monotonic() + timeout

    def name(i: int) -> str:
        return hosts[i] if i < len(hosts) else f"part {i}"

    while True:
        for i in range(count):
            if i in done:
                continue
            failed = marker_uri(work, i, FAILED)
            if storage.exists(failed):
                reason = _marker(storage, failed).get("reason") or "no reason given"
                raise JobFailedError(f"host {name(i)} (part {i + 1} of {count}) failed: {reason}")
            marker = marker_uri(work, i, DONE)
            if storage.exists(marker):
                done[i] = _marker(storage, marker)
        if len(done) == count:
            return [done[i] for i in range(count)]
        if time.monotonic() >= deadline:
            missing = ", ".join(name(i) for i in range(count) if i not in done)
            raise JobFailedError(
                f"gave up after {timeout:g} s waiting for {missing} to finish (killed or lost?); "
                "no merged output was written"
            )
        sleep(poll)


def _marker(storage: Store, uri: str) -> dict[str, Any]:
    try:
        data = json.loads(storage.read_text(uri))
    except (json.JSONDecodeError, RecursionError):
        raise FormatError("completion marker is not JSON", path=uri) from None
    if not isinstance(data, dict):
        raise FormatError("completion marker is not a JSON object", path=uri)
    return data


def channel_infos(markers: Sequence[dict[str, Any]], work: str, channel: str) -> list[dict[str, Any]]:
    """Each host's entry for ``channel`` from its ``.done`` marker, checked before it is trusted.

    A marker is data another machine wrote to shared storage: its part must be the one this job
    names (``part_prefix``), never a path it chose, and its counts and skipped rows must have the
    types the joiner reads, so a damaged marker is one line naming it, not a bug report.
    """
    infos = []
    for index, marker in enumerate(markers):
        where = marker_uri(work, index, DONE)
        channels = marker.get("channels")
        info = channels.get(channel, {}) if isinstance(channels, dict) else None
        if not isinstance(info, dict):
            raise FormatError(f"completion marker has no channel object {channel!r}", path=where)
        part = info.get("part")
        if part is not None and part != part_prefix(work, channel, index):
            raise FormatError(f"completion marker names part {str(part)[:200]!r}, not this host's "
                              f"{part_prefix(work, channel, index)}", path=where)
        counts = [info.get(k, 0) for k in ("records", "bytes")]
        skipped = info.get("skipped", [])
        if not all(type(n) is int and n >= 0 for n in counts) or not isinstance(skipped, list) or not all(
            isinstance(row, list) and len(row) == 3 and type(row[0]) is int and row[0] >= 0
            and isinstance(row[1], str) and isinstance(row[2], str) for row in skipped
        ):
            raise FormatError(f"completion marker of channel {channel!r}: 'records' and 'bytes' must be counts, "
                              "'skipped' rows [index, path, reason]", path=where)
        infos.append(info)
    return infos


# --------------------------------------------------------------------------- the merge


@dataclass
class _Part:
    rec: str
    entries: list[tuple[int, int]]  # (key, offset) in file order
    size: int
    record: DatasetRecord | None = None  # the host's dataset record of the part
    name: str = ""  # that record's URI

    def record_size(self, position: int) -> int:
        end = self.entries[position + 1][1] if position + 1 < len(self.entries) else self.size
        return end - self.entries[position][1]


@dataclass
class JoinSummary:
    """What :func:`join_channel` wrote."""

    records: int
    skipped: int
    bytes: int
    outputs: list[str] = field(default_factory=list)
    concatenated: bool = True
    skipped_items: list[Skipped] = field(default_factory=list)  # what prepare leaves out of its counts
    sizes: SizeRange = field(default_factory=SizeRange)  # smallest joined width/height (image_shape)
    report: str | None = None


def _load_part(storage: Store, info: dict[str, Any]) -> _Part | None:
    """A host's part, as its dataset record names it (never a stale file beside it)."""
    prefix = info.get("part")
    if not prefix:
        return None
    name = record_name(prefix)
    if not storage.is_file(name):
        raise StorageError("the part's dataset record is missing (its host did not finish it)", path=name)
    found = find_shards(name, storage)  # exactly the files the record names, as every reader finds them
    record = found.record
    if record is None or len(found.shards) != 1:
        raise FormatError(f"a part must be one .rec/.idx pair, the record names {len(found.shards)}", path=name)
    rec, idx = found.shards[0].rec, found.shards[0].idx or ""
    try:
        size = storage.size(rec)
    except StorageError as exc:
        raise StorageError(f"part file is missing ({exc.message})", path=rec) from None
    if size != record.shards[0].rec_bytes:
        raise FormatError(f"part holds {size} bytes but its dataset record says {record.shards[0].rec_bytes}", path=rec)
    if size != int(info.get("bytes", -1)):
        raise FormatError(f"part holds {size} bytes but its host wrote {info.get('bytes')}", path=rec)
    entries = parse_index(storage.read_text(idx), idx)
    if len(entries) != int(info.get("records", -1)):
        raise FormatError(f"index lists {len(entries)} records but its host wrote {info.get('records')}", path=idx)
    previous = -1
    for key, offset in entries:
        if offset <= previous or offset >= size:
            raise FormatError(f"offset {offset} of key {key} is out of order or past the end", path=idx)
        previous = offset
    if entries and entries[0][1] != 0:
        raise FormatError("the first record does not start at byte 0", path=idx)
    return _Part(rec, entries, size, record, name)


def plan_order(
    items: Sequence[LstItem], parts: Sequence[_Part | None], skipped: Sequence[Sequence[Any]], where: str
) -> tuple[list[tuple[int, int]], list[Skipped]]:
    """The merged record order as ``(part, position)`` pairs, and the skipped images, in list order.

    Fails unless every list item was packed by exactly one host or skipped by exactly one, and
    every packed record belongs to the list.
    """
    located = _locate(parts, where)
    reasons: dict[int, tuple[str, str]] = {}
    for index, path, reason in skipped:
        if int(index) in located or int(index) in reasons:
            raise FormatError(f"record {index} was reported twice", path=where)
        reasons[int(index)] = (str(path), str(reason))
    order: list[tuple[int, int]] = []
    dropped: list[Skipped] = []
    for item in items:
        if item.index in located:
            order.append(located.pop(item.index))
        elif item.index in reasons:
            path, reason = reasons.pop(item.index)
            dropped.append(Skipped(item.index, path, reason))
        else:
            raise JobFailedError(
                f"{where}: record {item.index} ({item.path}) was packed by no host: its image is missing "
                "from every host's input share"
            )
    stray = sorted(located) + sorted(reasons)
    if stray:
        raise FormatError(f"record {stray[0]} is not in the list (a part from another job?)", path=where)
    _check_part_order(order, where)
    return order, dropped


def _locate(parts: Sequence[_Part | None], where: str) -> dict[int, tuple[int, int]]:
    """Record key -> ``(part, position)``; a key in two parts is an error."""
    located: dict[int, tuple[int, int]] = {}
    for p, part in enumerate(parts):
        if part is None:
            continue
        for position, (key, _) in enumerate(part.entries):
            if key in located:
                raise FormatError(f"record {key} was packed by two hosts (parts {located[key][0]} and {p})", path=where)
            located[key] = (p, position)
    return located


def _check_part_order(order: Sequence[tuple[int, int]], where: str) -> None:
    """Within one part, records must come in the part's own order (each host packs list order)."""
    last: dict[int, int] = {}
    for p, position in order:
        if position != last.get(p, -1) + 1:
            raise FormatError(f"part {p} is not in list order", path=where)
        last[p] = position


class _Stream:
    """Sequential reads from a part file (one GET, streamed, on S3)."""

    def __init__(self, storage: Store, uri: str) -> None:
        self.uri = uri
        self._fh: IO[bytes] = storage.open_read(uri)

    def read_exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            data = self._fh.read(min(n - got, _CHUNK))
            if not data:
                raise FormatError(f"part ended {n - got} bytes early", path=self.uri)
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)

    def close(self) -> None:
        self._fh.close()


def join_channel(
    items: Sequence[LstItem],
    infos: Sequence[dict[str, Any]],
    output: str,
    storage: Store,
    *,
    quiet: bool = True,
    progress: bool | None = None,
) -> JoinSummary:
    """Merge the hosts' parts of one channel into ``output.rec`` + ``output.idx`` (+ skipped report).

    ``infos`` are the channel's entries of every host's ``.done`` marker, in host order;
    ``quiet``/``progress`` choose the progress meter of the read-back (:mod:`imgprep.layout.meter`).
    """
    parts = [_load_part(storage, info) for info in infos]
    skipped = [entry for info in infos for entry in info.get("skipped", [])]
    order, dropped = plan_order(items, parts, skipped, output)
    concatenated = order == sorted(order)
    total = sum(part.size for part in parts if part is not None)

    # The packer's publication rules (imgprep.packing.publish): no reader pairs a new .rec with an old .idx.
    rec_uri, idx_uri = publish_single(
        storage, output, total, lambda rec: _write_joined(storage, parts, order, concatenated, total, rec),
        new_record=True, pause=Publisher.pause)
    outputs = [rec_uri, idx_uri]
    report = write_report(storage, output, dropped)
    if report:
        outputs.append(report)
    template = next(part.record for part in parts if part is not None and part.record is not None)
    sizes = SizeRange()
    label = f"join {output.rstrip('/').rsplit('/', 1)[-1]}"
    with meter(label, len(order), "rec", quiet=quiet, progress=progress) as bar:
        joined = _joined_record(storage, template, items, output, len(dropped), sizes, bar)
    # the parts' fingerprints (prepare --dedup), joined in record order as one host writes them
    prints = join_prints(storage, [None if part is None or part.record is None else (part.name, part.record)
                                   for part in parts], order, prints_name(output))
    joined = dataclasses.replace(joined, fingerprints=prints)
    storage.write_text(record_name(output), to_json(joined))
    return JoinSummary(len(order), len(dropped), total, outputs, concatenated, dropped, sizes, report)


def _write_joined(storage: Store, parts: Sequence[_Part | None], order: Sequence[tuple[int, int]],
                  concatenated: bool, total: int, rec: Output) -> list[str]:
    """Write the parts' records into ``rec`` in list order; returns the joined index lines."""
    lines: list[str] = []
    if concatenated:
        joined = JoinedIndex()
        for part in parts:
            if part is not None:
                joined.add(part.rec, part.entries, part.size)
        lines = joined.lines
        concatenate(storage, [(part.rec, part.size) for part in parts if part is not None], rec)
    else:
        present = {p: part for p, part in enumerate(parts) if part is not None}
        streams: dict[int, _Stream] = {}
        try:
            for p, part in present.items():
                streams[p] = _Stream(storage, part.rec)
            offset = 0
            for p, position in order:
                part = present[p]
                size = part.record_size(position)
                rec.write(streams[p].read_exact(size))
                lines.append(format_index_line(part.entries[position][0], offset))
                offset += size
        finally:
            for stream in streams.values():
                stream.close()
    if rec.bytes_written != total:
        raise FormatError(f"wrote {rec.bytes_written} bytes but the parts hold {total}", path=rec.uri)
    return lines


def _joined_record(storage: Store, template: DatasetRecord, items: Sequence[LstItem], output: str,
                   skipped: int, sizes: SizeRange, bar: Off) -> DatasetRecord:
    """The dataset record a one-host pack of ``items`` writes: the parts' settings, the whole list,
    one shard hashed as stored (read back once: a server-side join never saw its bytes)."""
    rec, idx = shard_names(output, None)
    rec_sha, crcs = _hash_records(storage, rec, sizes, bar)
    shard = ShardEntry(
        rec=rec.rsplit("/", 1)[-1], idx=idx.rsplit("/", 1)[-1],
        records=len(parse_index(storage.read_text(idx), idx)),
        rec_bytes=storage.size(rec), idx_bytes=storage.size(idx),
        rec_sha256=rec_sha, idx_sha256=sha256(storage, idx), record_crc32=checksums.encode(crcs),
    )
    if len(crcs) != shard.records:
        raise FormatError(f"holds {len(crcs)} records, its index {shard.records}", path=rec)
    return dataclasses.replace(template, list=list_ref(items), shards=(shard,), skipped=skipped,
                               fingerprints=None)


def _hash_records(storage: Store, uri: str, sizes: SizeRange, bar: Off) -> tuple[str, list[int]]:
    """SHA-256 of the whole file and the per-record checksums, in one read; each record's image
    size goes to ``sizes``."""
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        with storage.open_read(uri) as fh:
            while chunk := fh.read(8 << 20):
                digest.update(chunk)
                yield chunk

    def framed(record: bytes) -> None:
        sizes.note_framed(record)
        bar.update(1)

    crcs = [crc for _, crc in checksums.spans(chunks(), framed=framed)]
    return digest.hexdigest(), crcs


def remove_tree(storage: Store, uri: str) -> None:
    """Delete the work folder (or prefix), and the ``.imgprep-parts`` folder above it when now empty."""
    storage.delete_tree(uri)
    storage.prune(uri.rstrip("/").rpartition("/")[0] or ".")
