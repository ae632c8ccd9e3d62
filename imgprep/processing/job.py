"""One host's run of a Processing job: build the global lists, pack this host's share, join.

A job is ``prepare`` (a dataset -> lists, metadata and one ``.rec`` per split) or ``pack`` (lists ->
one ``.rec``), with exactly the options of those commands.  With one host it is that command.  With
``n`` hosts every host builds the same lists, packs its share (see :mod:`.partition`) into part
files under a work prefix, and marks it done; the first host (or a separate ``--join only`` run)
waits for all of them, merges the parts in list order (see :mod:`.join`) and writes the lists,
``classes.json``, ``hyperparameters.json`` and manifests last.  The merged output is byte-identical
to the one-host run.  Any failure ends in ``/opt/ml/output/message`` and a non-zero exit status.
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

from imgprep.convert import ConvertOptions
from imgprep.errors import ImgprepError, UsageError
from imgprep.exits import failure
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.layout.retire import Retirement
from imgprep.packing.packer import PackOptions
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
from imgprep.storage.base import Store, join

JOIN_MODES = ("auto", "only", "no")
Echo = Callable[[str], None]


@dataclass
class Job:
    """What to make: ``prepare`` (``kind``, ``input``, ``convert``) or ``pack`` (``lists``, ``root``).

    ``options.storage`` is the Store every host's reads and writes go through (built by the face).
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
    output_format: str = "recordio"  # prepare: recordio, or images


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
    metadata: list[str]  # files convert() wrote in the scratch folder, in write order
    pack_options: PackOptions
    converted: Any = None  # prepare: the conversion, whose metadata is rewritten from the records


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

    options = job.options
    if count > 1 and (options.shard_records or options.shard_size):
        raise UsageError("a multi-host job writes one .rec per channel: --shard-records/--shard-size cannot be used")
    storage = options.storage
    if storage is None:
        raise UsageError("a job needs its Store: options=PackOptions(storage=Storage(...))")
    processing_dir = os.path.join(os.path.abspath(opt_ml), "processing") + os.sep
    local_output = storage.local_path(job.output)
    if count > 1 and local_output is not None and os.path.abspath(local_output).startswith(processing_dir):
        raise UsageError(
            f"a {count}-host job needs an output all hosts share: /opt/ml/processing/output is per host, "
            "so write to s3:// (-o s3://bucket/prefix/) or a shared file system"
        )
    run_id = cluster.run_id or config.job_name
    if run_id is None:
        if count > 1:
            raise UsageError("a multi-part run outside SageMaker needs --run-id (new for every attempt)")
        run_id = "local"
    from imgprep.storage.probe import check_access

    # fail before the work: the output (and S3 inputs) reachable and writable, one line if not
    check_access(storage, writes=[job.output], reads=[job.input, job.image_root, job.root, *job.lists])

    images = job.output_format == "images"
    if images and (job.command != "prepare" or (count == 1 and cluster.join != "only")):
        return _prepare_one_host(job, host, say)
    with tempfile.TemporaryDirectory(prefix="imgprep-job-") as scratch:
        plan = _plan(job, cluster, config, scratch, storage, say if index == 0 else None)
        distribution = _distribution(cluster, config, plan)
        result = JobResult(host, index, count, distribution)
        if count == 1 and cluster.join != "only":
            _pack_whole(job, plan, result, say)
            _describe_packed(job, plan, result.packed, storage, say)
            _write_metadata(job, plan, result, storage)
            return result

        parent = job.output if job.command == "prepare" else posixpath.dirname(job.output.rstrip("/"))
        work = cluster.work or join(join(parent or ".", PARTS_FOLDER), run_id)
        if cluster.join != "only":
            share = _write_image_share if images else _pack_share
            share(job, plan, result, work, run_id, hosts, storage, say)
        if cluster.join == "only" or (cluster.join == "auto" and index == 0):
            say(f"waiting for {count} hosts' parts under {work}")
            markers = wait_for_hosts(
                work, count, storage, hosts=hosts, timeout=cluster.join_timeout, poll=cluster.poll
            )
            for i, marker in enumerate(markers):
                if marker.get("run_id") != run_id or marker.get("count") != count:
                    raise UsageError(
                        f"the marker of part {i} belongs to another run ({marker.get('run_id')!r}, "
                        f"{marker.get('count')} parts); use a new --run-id"
                    )
            if images:
                _join_images(job, plan, result, markers, storage, say)
                remove_tree(storage, work)
                return result
            if job.command == "prepare":
                # Every part is packed: the old generation goes (its metadata first), as in plan.prepare;
                # each join then publishes its channel.
                Retirement(job.output, [channel.name for channel in plan.channels], storage).everything()
            for channel in plan.channels:
                infos = channel_infos(markers, work, channel.name)
                summary = join_channel(channel.items, infos, channel.final, storage)
                result.joined[channel.name] = summary
                result.outputs.extend(summary.outputs)
                how = "concatenated" if summary.concatenated else "merged by list order"
                say(f"joined {channel.name}: {summary.records} records, {summary.skipped} skipped ({how})")
            _describe_packed(job, plan, result.joined, storage, say)
            _write_metadata(job, plan, result, storage)
            remove_tree(storage, work)
        return result


def _prepare_one_host(job: Job, host: str, say: Echo) -> JobResult:
    """``prepare --format images`` on one host: the prepare itself (images straight to their channels)."""
    if job.command != "prepare":
        raise UsageError("--format applies to prepare jobs only")
    from imgprep import plan as prepare_plan

    if not job.kind or not job.input:
        raise UsageError("a prepare job needs KIND and INPUT")
    done = prepare_plan.prepare(job.kind, job.input, job.output, options=job.convert, spec=job.spec,
                                pack_options=job.options, storage=job.options.storage,  # type: ignore[arg-type]
                                image_root=job.image_root, echo=say, output_format=job.output_format)
    result = JobResult(host, 0, 1, FULLY_REPLICATED, packed=dict(done.packed))
    result.outputs = [s.list_uri for s in done.packed.values() if getattr(s, "list_uri", None)]
    return result


def _write_image_share(
    job: Job, plan: _Plan, result: JobResult, work: str, run_id: str, hosts: list[str], storage: Store,
    say: Echo,
) -> None:
    """This host's share of every split's images, straight into the channels' generation folders
    (named from the whole list, so every host writes where a one-host run would); what it wrote
    goes to its marker for the join, which commits the lists."""
    from imgprep.packing.channels import write_channel

    index, count = result.part_index, result.num_parts
    try:
        entries: dict[str, Any] = {}
        for channel in plan.channels:
            share = _share(plan, channel, result.distribution, count, index)
            entry: dict[str, Any] = {"items": len(share), "images": [], "skipped": []}
            if share:
                summary = write_channel(share, plan.source, job.output, channel.name, job.spec, plan.pack_options,
                                        whole=channel.items)
                result.packed[channel.name] = summary
                entry["images"] = [vars(e) for e in summary.entries]
                entry["skipped"] = [[s.index, s.path, s.reason] for s in summary.skipped_items]
            entries[channel.name] = entry
            say(f"wrote {len(entry['images'])} of {len(channel.items)} {channel.name} images "
                f"as part {index + 1}/{count}")
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


def _join_images(job: Job, plan: _Plan, result: JobResult, markers: list[dict[str, Any]], storage: Store,
                 say: Echo) -> None:
    """Every host wrote its images: the lists, made in list order from the hosts' markers as one
    host would make them, then the metadata (``hyperparameters.json`` last), then the old generation goes."""
    from imgprep.formats.imageset import ImageEntry
    from imgprep.layout.channels import channel_of
    from imgprep.layout.skipped import Skipped
    from imgprep.outputs.images import manifest_files
    from imgprep.packing.channels import commit_lists, finish, generation, summarise

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
        gen, settings = generation(channel.items, job.output, job.spec, plan.pack_options)
        summaries[channel.name] = summarise(job.output, channel.name, channel_of(channel.name), channel.items,
                                            entries, skipped, gen, settings, strict=plan.pack_options.strict)
        say(f"joined {channel.name}: {summaries[channel.name].records} images, {len(skipped)} skipped")
    result.joined = summaries  # type: ignore[assignment]
    _describe_packed(job, plan, summaries, storage, say)
    result.outputs += commit_lists(job.output, summaries.values(), storage, report=plan.pack_options.report, lock=True)
    splits = {os.path.basename(path) for path in plan.metadata} & {f"{name}.lst" for name in summaries}
    metadata = [path for path in plan.metadata if os.path.basename(path) not in splits]
    if job.convert.manifest_prefix is None and plan.converted is not None:
        from imgprep.convert import creation_date

        made, _ = manifest_files(job.output, summaries, plan.converted.dataset,
                                 creation_date(None, plan.converted.dataset))
        metadata = [path for path in metadata if not path.endswith(".manifest")]
        for target, text in made:
            storage.write_text(target, text)
            result.outputs.append(target)
    for path in metadata:  # hyperparameters.json last, as convert wrote them
        target = join(job.output, os.path.basename(path))
        storage.write_bytes(target, storage.read_bytes(path))
        result.outputs.append(target)
    finish(job.output, summaries.values(), storage)


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


def _pack_whole(job: Job, plan: _Plan, result: JobResult, say: Echo) -> None:
    from imgprep.packing.packer import pack

    # As plan.prepare: the first shard published retires the old metadata and the later channels.
    retirement = Retirement(job.output, [channel.name for channel in plan.channels], plan.pack_options.storage)
    for position, channel in enumerate(plan.channels):
        hook = retirement.before_publishing(position) if job.command == "prepare" else None
        summary = pack(channel.items, plan.source, channel.final, job.spec, plan.pack_options, before_publish=hook)
        result.packed[channel.name] = summary
        result.outputs.extend(summary.outputs)
        say(f"packed {channel.name}: {summary.records} records, {summary.skipped} skipped -> {channel.final}.rec")


def _pack_share(
    job: Job, plan: _Plan, result: JobResult, work: str, run_id: str, hosts: list[str], storage: Store,
    say: Echo,
) -> None:
    from imgprep.packing.packer import pack

    index, count = result.part_index, result.num_parts
    options = dataclasses.replace(plan.pack_options, report=False)
    try:
        entries: dict[str, Any] = {}
        for channel in plan.channels:
            share = _share(plan, channel, result.distribution, count, index)
            entry: dict[str, Any] = {"items": len(share), "part": None, "records": 0, "bytes": 0, "skipped": []}
            if share:
                prefix = part_prefix(work, channel.name, index)
                summary = pack(share, plan.source, prefix, job.spec, options)
                result.packed[channel.name] = summary
                entry.update(
                    part=prefix,
                    records=summary.records,
                    bytes=summary.bytes,
                    skipped=[[s.index, s.path, s.reason] for s in summary.skipped_items],
                )
            entries[channel.name] = entry
            say(f"packed {entry['records']} of {len(channel.items)} {channel.name} records as part {index + 1}/{count}")
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


def _describe_packed(job: Job, plan: _Plan, packed: dict[str, Any], storage: Store, say: Echo) -> None:
    """prepare: hyperparameters.json and classes.json rewritten from what was packed (the lists
    less the skipped images, image_shape from the smallest packed side), as on one host."""
    if job.command != "prepare" or plan.converted is None:
        return
    from imgprep import plan as prepare_plan
    from imgprep.formats.display import Messages

    scratch_out = os.path.dirname(plan.metadata[0]) if plan.metadata else None
    if scratch_out is None:
        return
    notes = Messages(say)
    prepare_plan.describe_packed(plan.converted, packed, job.spec, scratch_out, storage, notes, deferred=False)
    notes.flush()


def _write_metadata(job: Job, plan: _Plan, result: JobResult, storage: Store) -> None:
    """Copy the lists, classes.json, hyperparameters.json and manifests next to the merged records."""
    for path in plan.metadata:
        target = join(job.output, os.path.basename(path))
        storage.write_bytes(target, storage.read_bytes(path))
        result.outputs.append(target)


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


def _plan(
    job: Job, cluster: Cluster, config: JobConfig, scratch: str, storage: Store, echo: Echo | None
) -> _Plan:
    if job.command == "pack":
        from imgprep.formats.recordio import output_prefix
        from imgprep.splits.lists import read_lists

        if not job.lists or not job.root:
            raise UsageError("a pack job needs lists and --root")
        final = output_prefix(job.output)
        items = read_lists(job.lists, storage)
        name = posixpath.basename(final.rstrip("/")) or "data"
        local_root = storage.local_path(job.root)
        return _Plan([_Channel(name, items, final)], job.root, local_root, [], job.options)
    return _plan_prepare(job, cluster, config, scratch, storage, echo)


def _plan_prepare(
    job: Job, cluster: Cluster, config: JobConfig, scratch: str, storage: Store, echo: Echo | None
) -> _Plan:
    from imgprep import plan as prepare_plan

    kind, source_input = job.kind, job.input
    if not kind or not source_input:
        raise UsageError("a prepare job needs KIND and INPUT")
    prepare_plan.check_inputs(kind, job.convert, job.image_root)
    local_input, mirror = _local_input(kind, source_input, cluster, config, scratch, storage, echo)
    scratch_out = os.path.join(scratch, "out")
    os.makedirs(scratch_out)

    def relay(line: str) -> None:
        if echo is not None and not line.startswith("wrote "):
            echo(line)

    planned = prepare_plan.plan_prepare(
        kind, local_input, scratch_out, options=job.convert, spec=job.spec, pack_options=job.options,
        storage=storage, image_root=job.image_root, echo=relay,
    )
    dataset = planned.converted.dataset
    local_root: str | None = None
    source: Any = planned.source
    if source is None and mirror is not None:
        source, local_root = _mirrored_root(dataset.root or mirror, mirror, source_input, storage)
    elif source is None:
        source = prepare_plan.image_root_for(kind, dataset, job.image_root)
        local_root = storage.local_path(source)
    channels = [_Channel(name, items, join(job.output, name)) for name, items in planned.converted.lists.items()]
    return _Plan(channels, source, local_root, list(planned.converted.outputs), planned.pack_options,
                 planned.converted)


def _local_input(
    kind: str, source_input: str, cluster: Cluster, config: JobConfig, scratch: str, storage: Store,
    echo: Echo | None,
) -> tuple[str, str | None]:
    """The input as a local path this host can load, and the folder mirroring a listed image tree.

    Folder sources are listed, not downloaded: an S3 (or sharded) tree becomes a mirror of empty
    files whose paths the source reads; the small inputs of the other kinds are downloaded.
    """
    distribution = cluster.distribution
    if kind in ("folders", "caltech"):
        listing_uri: str | None = None
        if storage.local_path(source_input) is None:
            listing_uri = source_input
        else:
            channel = config.input_for(source_input)
            sharded = (distribution or (channel.distribution if channel else FULLY_REPLICATED)) == SHARDED
            if sharded:
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
    if storage.local_path(source_input) is None:
        if kind == "manifest":
            raise UsageError("prepare manifest reads a local manifest file (mount it as an input channel)")
        return _download(storage, source_input, os.path.join(scratch, "input")), None
    if kind == "mnist" and distribution == SHARDED:
        raise UsageError("mnist input is four IDX files: give it as a FullyReplicated input")
    return source_input, None


def _mirrored_root(root: str, mirror: str, source_input: str, storage: Store) -> tuple[str, str | None]:
    """The image root under the real input for ``root`` under the listing mirror, and its local path."""
    rel = os.path.relpath(root, mirror)
    base = source_input.rstrip("/")
    rel_posix = "" if rel == "." else rel.replace(os.sep, "/")
    if storage.local_path(source_input) is None:
        return (base + "/" + rel_posix if rel_posix else base), None
    local = os.path.join(base, rel) if rel_posix else base
    return local, local
