"""SageMaker Processing (or any scheduler): one prepare/pack job spread over N hosts, joined byte-exactly.

``python -m imgprep.processing`` is the container entrypoint (:mod:`.command`); :func:`run_job` the
library face.  The names below load on first use, so listing the CLI's commands stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Cluster", "Job", "JobResult", "run_job"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'imgprep.processing' has no attribute {name!r}")
    value = getattr(importlib.import_module("imgprep.processing.job"), name)
    globals()[name] = value
    return value
