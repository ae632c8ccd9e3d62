"""SageMaker Processing (or any scheduler): one prepare/pack job spread over N hosts, joined byte-exactly.

``python -m imgprep.processing`` is the container entrypoint; :func:`run_job` the library face.
"""

from __future__ import annotations

from imgprep.processing.job import Cluster, Job, JobResult, run_job

__all__ = ["Cluster", "Job", "JobResult", "run_job"]
