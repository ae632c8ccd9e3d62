"""One host's run of a Processing job: build the global lists, pack this host's share, join.

A job is ``prepare`` (a dataset -> lists, metadata and one ``.rec`` per split) or ``pack`` (lists ->
one ``.rec``), with exactly the options of those commands.  A prepare runs the executor the CLI
and the API run (:class:`imgprep.plan.PrepareRun`: the same ``--resume`` refusal, retirement and
commit).  With one host it is that command.  With ``n`` hosts every host builds the same lists,
packs its share (see :mod:`.partition`) into part files under a work prefix, and marks it done; the
first host (or a separate ``--join only`` run) waits for all of them, retires the old generation,
merges the parts in list order (see :mod:`.join`) and commits the lists and metadata last.  The
merged output is byte-identical to the one-host run.  Any failure ends in ``/opt/ml/output/message``
and a non-zero exit status.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imgprep import outputs
from imgprep.convert import ConvertOptions
from imgprep.errors import ImgprepError, UsageError
from imgprep.exits import failure
from imgprep.formats.display import Messages
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.classes import beside
from imgprep.packing.packer import PackOptions
from imgprep.plan import PreparePlan, PrepareRun
from imgprep.processing.config import (
    FULLY_REPLICATED,
    SHARDED,
    JobConfig,
    load_job_config,
    opt_ml_root,
    write_message,
)
from imgprep.processing.join import (
    DONE,
    FAILED,
    PARTS_FOLDER,
    JoinSummary,
    channel_infos,
    join_channel,
    part_prefix,
    remove_tree,
    wait_for_hosts,
    write_marker,
)
from imgprep.processing.partition import contiguous_share, list_prefix, local_share, mirror_listing
from imgprep.signals import sigterm_as_interrupt
from imgprep.sources.registry import Kind
from imgprep.storage.base import Store, join

JOIN_MODES = ("auto", "only", "no")
Echo = Callable[[str], None]


@dataclass
class Job:
    """What to make: ``prepare`` (``kind``, ``input``, ``convert``) or ``pack`` (``lists``, ``root``).

    ``storage`` is the Store every host's reads and writes go through (built by the face; a
    ``PackOptions.storage`` is still taken when it is not given).
    """

    command: str
    output: str
    spec: TransformSpec
    options: PackOptions
    kind: str | None = None
    input: str | None = None
    image_root: str | None = None
    convert: ConvertOptions = field(default_factory=ConvertOptions)
    lists: tuple[str, ...] = ()
    root: str | None = None
    output_format: str = outputs.DEFAULT  # prepare: how each split is written (imgprep.outputs)
    storage: Store | None = None


@dataclass
class Cluster:
    """How this run fits in the job: which part, how the input is distributed, where parts meet."""

    opt_ml: str | None = None
    num_parts: int | None = None
    part_index: int | None = None
    distribution: str | None = None  # None: from processingjobconfig.json, else FullyReplicated
    input_s3_uri: str | None = None  # the sharded input's S3 prefix (else from processingjobconfig.json)
    run_id: str | None = None  # None: the ProcessingJobName
    work: str | None = None  # None: OUTDIR/.imgprep-parts/RUN_ID
    join: str = "auto"  # auto: the first host joins; only: join, pack nothing; no: pack only
    join_timeout: float = 6 * 3600.0
    poll: float = 5.0


@dataclass
class JobResult:
    """What this host did."""

    host: str
    part_index: int
    num_parts: int
    distribution: str
    packed: dict[str, Any] = field(default_factory=dict)
    joined: dict[str, JoinSummary] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)


@dataclass
class _Channel:
    name: str
    items: list[LstItem]
    final: str


@dataclass
class _Plan:
    channels: list[_Channel]
    source: Any
    local_root: str | None  # the local image folder a sharded share is judged by
    pack_options: PackOptions
    spec: TransformSpec
    storage: Store
    run: PrepareRun | None = None  # prepare: the executor the CLI and the API use too


def failure_reason(exc: BaseException) -> str:
    """The one line that goes to ``/opt/ml/output/message`` (the same as the entry point prints)."""
    return failure(exc).reason or type(exc).__name__


def run_job(job: Job, cluster: Cluster | None = None, echo: Echo | None = None) -> JobResult:
    """Run this host's part of ``job``; on failure write the message file and re-raise."""
    cluster = cluster or Cluster()
    opt_ml = opt_ml_root(cluster.opt_ml)
    try:
        with sigterm_as_interrupt():
            return _run(job, cluster, load_job_config(opt_ml), opt_ml, echo or (lambda _line: None))
    except BaseException as exc:
        write_message(opt_ml, failure_reason(exc))
        raise


def _placement(cluster: Cluster, config: JobConfig) -> tuple[int, int, list[str]]:
    if cluster.num_parts is not None or cluster.part_index is not None:
        if cluster.num_parts is None or cluster.part_index is None:
            raise UsageError("--num-parts and --part-index go together")
        count, index = cluster.num_parts, cluster.part_index
        if count < 1 or not 0 <= index < count:
            raise UsageError(f"--part-index must be in 0..{count - 1}, got {index}")
        hosts = list(config.hosts) if len(config.hosts) == count else [f"part-{i}" for i in range(count)]
        return index, count, hosts
    if config.hosts:
        return int(config.host_index or 0), len(config.hosts), list(config.hosts)
    return 0, 1, ["local"]


def _run(job: Job, cluster: Cluster, config: JobConfig, opt_ml: str, echo: Echo) -> JobResult:
    if job.command not in ("prepare", "pack"):
        raise UsageError(f"unknown job command {job.command!r} (prepare or pack)")
    if cluster.join not in JOIN_MODES:
        raise UsageError(f"--join must be one of {', '.join(JOIN_MODES)}, got {cluster.join!r}")
    index, count, hosts = _placement(cluster, config)
    host = hosts[index]

    def say(line: str) -> None:
        echo(f"[{host}] {line}" if count > 1 else line)

    storage = _store(job, count, opt_ml)
    images = job.command == "prepare" and job.output_format == "images"  # every host writes its images in place
    if job.command == "prepare" and count > 1 and not outputs.get(job.output_format).joins_parts and not images:
        raise UsageError(f"the {job.output_format} format is written on one host: give the job one instance")
    run_id = _run_id(cluster, config, count)
    from imgprep.storage.probe import check_access

    # fail before the work: the output (and S3 inputs) reachable and writable, one line if not
    check_access(storage, writes=[job.output], reads=[job.input, job.image_root, job.root, *job.lists])

    with tempfile.TemporaryDirectory(prefix="imgprep-job-") as scratch:
        notes = Messages(say)  # the metadata's warnings and summary, after what was written
        plan = _plan(job, cluster, config, scratch, storage, say if index == 0 else None, notes)
        result = JobResult(host, index, count, _distribution(cluster, config, plan))
        if plan.run is not None:
            plan.run.refuse_another_split()  # every host, before it writes anything
        if count == 1 and cluster.join != "only":
            _pack_whole(plan, result, say)
            return result
        parent = job.output if job.command == "prepare" else posixpath.dirname(job.output.rstrip("/"))
        work = cluster.work or join(join(parent or ".", PARTS_FOLDER), run_id)
        if cluster.join != "only":
            share = _write_image_share if images else _pack_share
            try:
                share(job, plan, result, work, run_id, hosts, storage, say)
            finally:
                if plan.run is not None:
                    plan.run.plan.discard()
        if cluster.join == "only" or (cluster.join == "auto" and index == 0):
            _join(plan, result, work, run_id, hosts, cluster, say)
        return result


def _store(job: Job, count: int, opt_ml: str) -> Store:
    """The job's Store, once the options are known to suit ``count`` hosts."""
    options = job.options
    if count > 1 and (options.shard_records or options.shard_size):
        raise UsageError("a multi-host job writes one .rec per channel: --shard-records/--shard-size cannot be used")
    storage = job.storage or options.storage  # PackOptions.storage: the older way to give it
    if storage is None:
        raise UsageError("a job needs its Store: Job(..., storage=Storage(...))")
    processing_dir = os.path.join(os.path.abspath(opt_ml), "processing") + os.sep
    local_output = storage.local_path(job.output)
    if count > 1 and local_output is not None and os.path.abspath(local_output).startswith(processing_dir):
        raise UsageError(
            f"a {count}-host job needs an output all hosts share: /opt/ml/processing/output is per host, "
            "so write to s3:// (-o s3://bucket/prefix/) or a shared file system"
        )
    return storage


def _run_id(cluster: Cluster, config: JobConfig, count: int) -> str:
    run_id = cluster.run_id or config.job_name
    if run_id is None:
        if count > 1:
            raise UsageError("a multi-part run outside SageMaker needs --run-id (new for every attempt)")
        run_id = "local"
    return run_id


def _join(plan: _Plan, result: JobResult, work: str, run_id: str, hosts: list[str], cluster: Cluster,
          say: Echo) -> None:
    """The first host's last step: wait for every part, retire the old generation, join each
    channel, commit the metadata (prepare), remove the parts."""
    storage, count = plan.storage, result.num_parts
    say(f"waiting for {count} hosts' parts under {work}")
    markers = wait_for_hosts(work, count, storage, hosts=hosts, timeout=cluster.join_timeout, poll=cluster.poll)
    for i, marker in enumerate(markers):
        if marker.get("run_id") != run_id or marker.get("count") != count:
            raise UsageError(
                f"the marker of part {i} belongs to another run ({marker.get('run_id')!r}, "
                f"{marker.get('count')} parts); use a new --run-id"
            )
    if plan.run is not None and plan.run.output.name == "images":
        result.joined = _image_summaries(plan, markers, say)  # type: ignore[assignment]
        result.outputs.extend(plan.run.commit(result.joined))
        plan.run.say.flush()
        remove_tree(storage, work)
        return
    if plan.run is not None:
        plan.run.retire_all()  # every part is written: the old generation goes before a join publishes
    for channel in plan.channels:
        summary = join_channel(channel.items, channel_infos(markers, work, channel.name), channel.final, storage,
                               quiet=plan.pack_options.quiet, progress=plan.pack_options.progress)
        result.joined[channel.name] = summary
        result.outputs.extend(summary.outputs)
        how = "concatenated" if summary.concatenated else "merged by list order"
        say(f"joined {channel.name}: {summary.records} records, {summary.skipped} skipped ({how})")
    if plan.run is not None:
        result.outputs.extend(plan.run.commit(result.joined))
        plan.run.say.flush()
    remove_tree(storage, work)


def _distribution(cluster: Cluster, config: JobConfig, plan: _Plan) -> str:
    if cluster.distribution:
        return cluster.distribution
    if plan.local_root is not None:
        channel = config.input_for(plan.local_root)
        if channel is not None:
            return channel.distribution
    return FULLY_REPLICATED


def _share(plan: _Plan, channel: _Channel, distribution: str, count: int, index: int) -> list[LstItem]:
    if distribution == SHARDED:
        if plan.local_root is None:
            raise UsageError("ShardedByS3Key needs the images in a local input folder (a mounted channel)")
        return local_share(channel.items, plan.local_root)
    return contiguous_share(channel.items, count, index)


def _pack_whole(plan: _Plan, result: JobResult, say: Echo) -> None:
    """One host: prepare's run (retirement, commit) as on the command line; a pack job's one list."""

    def told(name: str, summary: Any) -> None:
        result.packed[name] = summary
        result.outputs.extend(summary.outputs)
        # as the CLI says it; another output format's summary may not say whether it was complete
        done = "already complete, nothing to resume: " if getattr(summary, "already_complete", False) else ""
        say(f"packed {name}: {done}{summary.records} records, {summary.skipped} skipped -> {final[name]}.rec")

    final = {channel.name: channel.final for channel in plan.channels}
    if plan.run is not None:
        try:
            plan.run.write_splits(plan.source, told)
        finally:
            plan.run.plan.discard()
        result.outputs.extend(plan.run.commit(result.packed))
        plan.run.say.flush()
        return
    from imgprep.packing.packer import pack

    for channel in plan.channels:
        told(channel.name, pack(channel.items, plan.source, channel.final, plan.spec, plan.pack_options,
                                storage=plan.storage))


def _pack_share(
    job: Job, plan: _Plan, result: JobResult, work: str, run_id: str, hosts: list[str], storage: Store,
    say: Echo,
) -> None:
    from imgprep.packing.packer import pack

    index, count = result.part_index, result.num_parts
    options = dataclasses.replace(plan.pack_options, report=False)

    def entry(channel: _Channel, share: list[LstItem]) -> dict[str, Any]:
        entry: dict[str, Any] = {"items": len(share), "part": None, "records": 0, "bytes": 0, "skipped": []}
        if share:
            prefix = part_prefix(work, channel.name, index)
            summary = pack(share, plan.source, prefix, job.spec, options, storage=plan.storage)
            result.packed[channel.name] = summary
            entry.update(
                part=prefix,
                records=summary.records,
                bytes=summary.bytes,
                skipped=[[s.index, s.path, s.reason] for s in summary.skipped_items],
            )
        say(f"packed {entry['records']} of {len(channel.items)} {channel.name} records as part {index + 1}/{count}")
        return entry

    _write_share(plan, result, work, run_id, storage, entry)


def _write_image_share(
    job: Job, plan: _Plan, result: JobResult, work: str, run_id: str, hosts: list[str], storage: Store,
    say: Echo,
) -> None:
    """The image format: this host's share of every split's images, straight into the channels'
    generation folders (named from the whole list, so each host writes where one host would);
    what it wrote goes to its marker, from which the join makes the lists."""
    from imgprep.packing.channels import write_channel

    index, count = result.part_index, result.num_parts

    def entry(channel: _Channel, share: list[LstItem]) -> dict[str, Any]:
        entry: dict[str, Any] = {"items": len(share), "images": [], "skipped": []}
        if share:
            summary = write_channel(share, plan.source, job.output, channel.name, job.spec, plan.pack_options,
                                    storage=plan.storage, whole=channel.items)
            result.packed[channel.name] = summary
            entry["images"] = [vars(e) for e in summary.entries]
            entry["skipped"] = [[s.index, s.path, s.reason] for s in summary.skipped_items]
        say(f"wrote {len(entry['images'])} of {len(channel.items)} {channel.name} images as part {index + 1}/{count}")
        return entry

    _write_share(plan, result, work, run_id, storage, entry)


def _write_share(plan: _Plan, result: JobResult, work: str, run_id: str, storage: Store,
                 entry: Callable[[_Channel, list[LstItem]], dict[str, Any]]) -> None:
    """This host's share of every channel (``entry`` writes one and says what it wrote), then its
    marker: done, with the entries the join reads, or failed, with the reason."""
    index, count = result.part_index, result.num_parts
    try:
        entries = {channel.name: entry(channel, _share(plan, channel, result.distribution, count, index))
                   for channel in plan.channels}
        payload = {"host": result.host, "index": index, "count": count, "run_id": run_id,
                   "distribution": result.distribution, "channels": entries}
        write_marker(storage, work, index, DONE, payload)
    except BaseException as exc:
        try:
            write_marker(storage, work, index, FAILED, {"host": result.host, "run_id": run_id,
                                                        "reason": failure_reason(exc)})
        except (ImgprepError, OSError) as marker_error:
            print(f"imgprep: could not write the failure marker: {marker_error}", file=sys.stderr)
        raise


def _image_summaries(plan: _Plan, markers: list[dict[str, Any]], say: Echo) -> dict[str, Any]:
    """Each channel's list and record, made in list order from what the hosts' markers say they
    wrote, as one host would make them (the commit then publishes them)."""
    from imgprep.formats.imageset import ImageEntry
    from imgprep.layout.channels import channel_of
    from imgprep.layout.skipped import Skipped
    from imgprep.packing.channels import generation, summarise

    output = plan.run.outdir if plan.run is not None else ""
    summaries = {}
    for channel in plan.channels:
        entries: dict[int, ImageEntry] = {}
        skipped: list[Skipped] = []
        for marker in markers:
            part = marker["channels"][channel.name]
            entries.update((doc["index"], ImageEntry(**doc)) for doc in part["images"])
            skipped += [Skipped(int(i), str(p), str(r)) for i, p, r in part["skipped"]]
        gone = {s.index for s in skipped}
        missing = next((item for item in channel.items if item.index not in entries and item.index not in gone), None)
        if missing is not None:
            raise UsageError(f"{channel.name}: image {missing.index} ({missing.path}) was written by no host")
        made = generation(channel.items, output, plan.spec, plan.pack_options)
        summaries[channel.name] = summarise(output, channel.name, channel_of(channel.name), channel.items, entries,
                                            skipped, made, strict=plan.pack_options.strict)
        say(f"joined {channel.name}: {summaries[channel.name].records} images, {len(skipped)} skipped")
    return summaries


# --------------------------------------------------------------------------- building the lists


def _download(storage: Store, uri: str, directory: str) -> str:
    """A small input (COCO JSON, manifest, IDX files) from S3 into ``directory``; the local path."""
    os.makedirs(directory, exist_ok=True)
    if not uri.endswith("/") and storage.exists(uri):
        # One object, unless it is a folder-like prefix.
        target = os.path.join(directory, posixpath.basename(uri))
        with open(target, "wb") as fh:
            fh.write(storage.read_bytes(uri))
        return target
    for rel in list_prefix(storage, uri):
        target = os.path.join(directory, *rel.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(storage.read_bytes(uri.rstrip("/") + "/" + rel))
    return directory


def _sharded_uri(cluster: Cluster, config: JobConfig, path: str) -> str | None:
    """The S3 prefix that holds the whole of the local (sharded) folder ``path``."""
    if cluster.input_s3_uri:
        return cluster.input_s3_uri
    channel = config.input_for(path)
    if channel is None or not channel.s3_uri:
        return None
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(channel.local_path))
    base = channel.s3_uri.rstrip("/")
    return base if rel == "." else base + "/" + rel.replace(os.sep, "/")


class _Listed(list[LstItem]):
    """A pack job's items, carrying the reference of the lists they were read from."""

    ref: Any = None


def _plan(
    job: Job, cluster: Cluster, config: JobConfig, scratch: str, storage: Store, echo: Echo | None, notes: Messages
) -> _Plan:
    """The lists to write and how; ``echo`` gets the conversion's lines, ``notes`` the run's."""
    if job.command == "pack":
        from imgprep.layout.names import output_prefix
        from imgprep.splits.lists import read_lists
        from imgprep.splits.stream import ListStream

        if not job.lists or not job.root:
            raise UsageError("a pack job needs lists and --root")
        final = output_prefix(job.output)
        items = _Listed(read_lists(job.lists, storage))
        items.ref = ListStream(job.lists, storage).ref  # the record names the lists, as `imgprep pack`'s does
        name = posixpath.basename(final.rstrip("/")) or "data"
        local_root = storage.local_path(job.root)
        options = job.options
        if options.num_classes is None:  # the classes.json beside the list, as a one-host pack finds it
            found = beside(job.lists[0], storage)
            if found.number is not None:
                options = dataclasses.replace(options, num_classes=found.number, class_names=found.names)
        return _Plan([_Channel(name, items, final)], job.root, local_root, options, job.spec, storage)
    return _plan_prepare(job, cluster, config, scratch, storage, echo, notes)


def _plan_prepare(
    job: Job, cluster: Cluster, config: JobConfig, scratch: str, storage: Store, echo: Echo | None, notes: Messages
) -> _Plan:
    """Every host converts alike (the lists are the same everywhere); the metadata waits for the
    commit (:class:`imgprep.plan.PrepareRun`), written beside the joined records."""
    from imgprep.plan import PrepareRequest, plan_prepare
    from imgprep.sources import registry

    if not job.kind or not job.input:
        raise UsageError("a prepare job needs KIND and INPUT")
    kind, output_format = registry.get(job.kind), outputs.get(job.output_format)
    kind.check_image_root(job.image_root, job.convert.source.root)
    local_input, mirror = _local_input(kind, job.input, cluster, config, scratch, storage, echo)
    request = PrepareRequest(kind.name, local_input, job.output, job.convert, job.spec, job.options,
                             image_root=job.image_root, output_format=output_format.name)
    # the conversion's summary joins the run's, said once after the commit (as the CLI says it)
    planned = plan_prepare(request, storage, echo=None if echo is None else notes, defer_writes=True)
    source, local_root = _image_source(kind, planned, mirror, job, storage)
    run = PrepareRun(planned, job.output, job.spec, output_format, notes)
    channels = [_Channel(name, items, run.split_output(name)) for name, items in planned.converted.lists.items()]
    return _Plan(channels, source, local_root, planned.pack_options, job.spec, storage, run)


def _image_source(kind: Kind, planned: PreparePlan, mirror: str | None, job: Job,
                  storage: Store) -> tuple[Any, str | None]:
    """What the hosts pack from (in-memory images, or the image root), and its local folder."""
    if planned.source is not None:
        return planned.source, None
    dataset = planned.converted.dataset
    if mirror is not None:
        return _mirrored_root(dataset.root or mirror, mirror, job.input or "", storage)
    source = kind.image_root_for(dataset, job.image_root)
    return source, storage.local_path(source)


def _local_input(
    kind: Kind, source_input: str, cluster: Cluster, config: JobConfig, scratch: str, storage: Store,
    echo: Echo | None,
) -> tuple[str, str | None]:
    """The input as a local path this host can load, and the folder mirroring a listed image tree.

    Image trees are listed, not downloaded: an S3 (or sharded) tree becomes a mirror of empty
    files whose paths the source reads; the small inputs of the other kinds are downloaded.
    """
    if kind.walks_tree:
        return _listed_tree(source_input, cluster, config, scratch, storage, echo)
    if not storage.is_local(source_input):
        kind.check_remote_input()
        return _download(storage, source_input, os.path.join(scratch, "input")), None
    if cluster.distribution == SHARDED:
        kind.check_sharded()
    return source_input, None


def _listed_tree(source_input: str, cluster: Cluster, config: JobConfig, scratch: str, storage: Store,
                 echo: Echo | None) -> tuple[str, str | None]:
    """A local, whole tree as it is; else a mirror of the listing of its S3 prefix."""
    listing_uri: str | None = None
    if not storage.is_local(source_input):
        listing_uri = source_input
    else:
        channel = config.input_for(source_input)
        distribution = cluster.distribution or (channel.distribution if channel else FULLY_REPLICATED)
        if distribution == SHARDED:
            listing_uri = _sharded_uri(cluster, config, source_input)
            if listing_uri is None:
                raise UsageError(
                    f"{source_input} is sharded (ShardedByS3Key), so this host sees only part of it: the "
                    "whole listing needs its S3 prefix (processingjobconfig.json or --input-s3-uri)"
                )
    if listing_uri is None:
        return source_input, None
    mirror = os.path.join(scratch, "listing")
    found = mirror_listing(list_prefix(storage, listing_uri), mirror)
    if echo:
        echo(f"listed {found} objects under {listing_uri}")
    return mirror, mirror


def _mirrored_root(root: str, mirror: str, source_input: str, storage: Store) -> tuple[str, str | None]:
    """The image root under the real input for ``root`` under the listing mirror, and its local path."""
    rel = os.path.relpath(root, mirror)
    base = source_input.rstrip("/")
    rel_posix = "" if rel == "." else rel.replace(os.sep, "/")
    if not storage.is_local(source_input):
        return (base + "/" + rel_posix if rel_posix else base), None
    local = os.path.join(base, rel) if rel_posix else base
    return local, local
