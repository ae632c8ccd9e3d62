"""The SageMaker Processing container contract: ``/opt/ml`` paths, its config files, the message file.

SageMaker mounts inputs under ``/opt/ml/processing/input/<name>``, collects outputs from
``/opt/ml/processing/output/<name>``, describes the cluster in ``/opt/ml/config/resourceconfig.json``
(``current_host``, ``hosts``) and echoes the request in ``processingjobconfig.json`` (inputs with
their ``S3Uri`` and ``S3DataDistributionType``).  A failed job's reason is the first KiB of
``/opt/ml/output/message``.  The root is configurable (``--opt-ml`` / ``IMGPREP_OPT_ML``) so tests
and other schedulers can lay out the same tree anywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import IO, Any

from imgprep.errors import FormatError, UsageError
from imgprep.formats.paths import check_regular

DEFAULT_OPT_ML = "/opt/ml"
ENV_OPT_ML = "IMGPREP_OPT_ML"
FULLY_REPLICATED = "FullyReplicated"
SHARDED = "ShardedByS3Key"
DISTRIBUTIONS = (FULLY_REPLICATED, SHARDED)
# The platform's config files and a job's options are a few KiB; larger input is refused unread.
MAX_CONFIG_CHARS = 1 << 24
MESSAGE_LIMIT = 1024  # bytes of /opt/ml/output/message that become the job's ExitMessage


def opt_ml_root(explicit: str | None = None) -> str:
    """``--opt-ml`` if given, else ``$IMGPREP_OPT_ML``, else ``/opt/ml``."""
    return explicit or os.environ.get(ENV_OPT_ML) or DEFAULT_OPT_ML


@dataclass(frozen=True)
class InputChannel:
    """One ``ProcessingInputs`` entry as the container sees it."""

    name: str
    local_path: str
    s3_uri: str | None
    distribution: str = FULLY_REPLICATED


@dataclass(frozen=True)
class JobConfig:
    """What the platform told this container about the job and the cluster."""

    opt_ml: str
    current_host: str | None = None
    hosts: tuple[str, ...] = ()
    job_name: str | None = None
    inputs: tuple[InputChannel, ...] = field(default_factory=tuple)

    @property
    def host_index(self) -> int | None:
        """Position of this host in ``hosts`` (the part it packs), or None outside a cluster."""
        if self.current_host is None or not self.hosts:
            return None
        return self.hosts.index(self.current_host)

    def input_for(self, path: str) -> InputChannel | None:
        """The input channel whose local path is ``path`` or one of its ancestors."""
        target = os.path.normpath(os.path.abspath(path))
        best: InputChannel | None = None
        for channel in self.inputs:
            base = os.path.normpath(os.path.abspath(channel.local_path))
            if (target == base or target.startswith(base + os.sep)) and (
                best is None or len(base) > len(best.local_path)
            ):
                best = channel
        return best


def _read_json(path: str) -> Any:
    try:
        check_regular(path)
        with open(path, encoding="utf-8") as fh:
            return json.loads(_bounded(fh, path))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"unreadable platform config ({exc})", path=path) from None
    except RecursionError:
        raise FormatError("unreadable platform config (JSON nested too deeply)", path=path) from None


def _bounded(fh: IO[str], path: str) -> str:
    """A config file's text, refused past :data:`MAX_CONFIG_CHARS` before it is held whole."""
    text = fh.read(MAX_CONFIG_CHARS + 1)
    if len(text) > MAX_CONFIG_CHARS:
        raise FormatError(f"longer than {MAX_CONFIG_CHARS} characters: not a config file", path=path)
    return text


def load_job_config(opt_ml: str) -> JobConfig:
    """Parse ``<opt_ml>/config/resourceconfig.json`` and ``processingjobconfig.json`` (both optional)."""
    config_dir = os.path.join(opt_ml, "config")
    current_host, hosts = _cluster(os.path.join(config_dir, "resourceconfig.json"))
    job_name, inputs = _job(os.path.join(config_dir, "processingjobconfig.json"))
    return JobConfig(opt_ml, current_host, hosts, job_name, inputs)


def _cluster(path: str) -> tuple[str | None, tuple[str, ...]]:
    """``current_host`` and ``hosts`` from resourceconfig.json (none outside a cluster)."""
    resource = _read_json(path)
    if resource is None:
        return None, ()
    if not isinstance(resource, dict):
        raise FormatError("expected a JSON object", path=path)
    current_host = resource.get("current_host")
    raw_hosts = resource.get("hosts")
    if not isinstance(current_host, str) or not isinstance(raw_hosts, list) or not raw_hosts:
        raise FormatError("needs 'current_host' (a string) and 'hosts' (a non-empty list)", path=path)
    if not all(isinstance(h, str) for h in raw_hosts):
        raise FormatError("'hosts' must list host names (strings)", path=path)
    hosts = tuple(raw_hosts)
    if len(set(hosts)) != len(hosts):
        raise FormatError("'hosts' lists a host twice", path=path)
    if current_host not in hosts:
        raise FormatError(f"current_host {current_host!r} is not in hosts", path=path)
    return current_host, hosts


def _job(path: str) -> tuple[str | None, tuple[InputChannel, ...]]:
    """The job's name and its inputs with local files, from processingjobconfig.json."""
    job = _read_json(path)
    if job is None:
        return None, ()
    if not isinstance(job, dict):
        raise FormatError("expected a JSON object", path=path)
    job_name = job.get("ProcessingJobName") if isinstance(job.get("ProcessingJobName"), str) else None
    entries = job.get("ProcessingInputs") or []
    if not isinstance(entries, list):
        raise FormatError("'ProcessingInputs' must be a list", path=path)
    inputs = (_input(number, entry, path) for number, entry in enumerate(entries))
    return job_name, tuple(channel for channel in inputs if channel is not None)


def _input(number: int, entry: Any, path: str) -> InputChannel | None:
    s3 = entry.get("S3Input") if isinstance(entry, dict) else None
    if not isinstance(s3, dict) or not s3.get("LocalPath"):
        return None  # dataset-definition inputs have no local files to pack
    if not isinstance(s3["LocalPath"], str) or not isinstance(s3.get("S3Uri"), str | None):
        raise FormatError(f"ProcessingInputs[{number}]: 'LocalPath' and 'S3Uri' must be strings", path=path)
    distribution = s3.get("S3DataDistributionType") or FULLY_REPLICATED
    if distribution not in DISTRIBUTIONS:
        raise FormatError(f"unknown S3DataDistributionType {distribution!r}", path=path)
    return InputChannel(str(entry.get("InputName", "")), s3["LocalPath"], s3.get("S3Uri"), distribution)


def write_message(opt_ml: str, reason: str) -> str | None:
    """Write the one-line failure reason the platform shows as the job's ExitMessage.

    Newlines become spaces and the text is cut to 1 KiB on a character boundary (the platform
    keeps the first KiB and needs UTF-8).  Returns the path, or None when it cannot be written
    (the reason still goes to stderr; a read-only /opt/ml must not hide the real error).
    """
    line = " ".join(reason.split()) or "failed"
    data = line.encode("utf-8")[:MESSAGE_LIMIT].decode("utf-8", errors="ignore")
    path = os.path.join(opt_ml, "output", "message")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(data + "\n")
    except OSError:
        return None
    return path


def load_options_file(path: str) -> dict[str, Any]:
    """A job's options from JSON (always) or YAML (when PyYAML is importable).

    Keys are option names (``resize``, ``train-per-class`` or ``train_per_class``); ``command``
    picks ``prepare`` or ``pack``.  Dashes become underscores, so both spellings work.
    """
    try:
        check_regular(path)
        with open(path, encoding="utf-8") as fh:
            text = _bounded(fh, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from None
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise UsageError(f"{path}: YAML config files need PyYAML (pip install pyyaml); JSON always works") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FormatError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from None
        except RecursionError:
            raise FormatError("YAML nested too deeply for the parser", path=path) from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=path) from None
        except RecursionError:
            raise FormatError("JSON nested too deeply for the parser", path=path) from None
    if not isinstance(data, dict):
        raise FormatError("expected a mapping of option names to values", path=path)
    return {str(k).replace("-", "_"): v for k, v in data.items()}
