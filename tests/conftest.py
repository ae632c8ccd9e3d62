"""Shared fixtures: the reference readers (MXNet 1.9.1, DALI's CPU reader) and image helpers.

The reference readers run in subprocesses: MXNet lives in its own virtualenv (it needs
numpy < 1.24) and DALI brings threads and warnings that pytest's warnings-as-errors must not see.
When a reader is missing, its tests are skipped, or fail when ``IMGPREP_REQUIRE_REFERENCE=1``
(what ``make test`` and CI set), so a broken install can never pass as green.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
REFERENCE = TESTS / "reference"

# Let tests `import imgfactory` whatever pytest's import mode or package layout.
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


def reference_required() -> bool:
    return os.environ.get("IMGPREP_REQUIRE_REFERENCE", "") not in ("", "0")


def reader_unavailable(why: str) -> None:
    if reference_required():
        pytest.fail(f"{why} (IMGPREP_REQUIRE_REFERENCE is set, so this is an error)", pytrace=False)
    pytest.skip(why)


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONWARNINGS"] = "ignore"
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MXNET_CPU_WORKER_NTHREADS", "1")
    return env


class ReferenceFailure(AssertionError):
    """A reference reader exited non-zero; carries its stderr for the test report."""

    def __init__(self, what: str, proc: subprocess.CompletedProcess[str]) -> None:
        self.returncode = proc.returncode
        self.stderr = proc.stderr
        super().__init__(f"{what} exited {proc.returncode}:\n{proc.stderr[-4000:]}")


def _run(cmd: list[str], what: str, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=_subprocess_env(), timeout=timeout, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise ReferenceFailure(what, proc)
    return proc


def _run_json(cmd: list[str], what: str, timeout: float) -> Any:
    proc = _run(cmd, what, timeout)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        detail = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise AssertionError(f"{what} printed no JSON:\n{detail}") from None


class MXNetReader:
    """``run(subcommand, *args)`` runs ``tests/reference/mx_reader.py`` under MXNet's python."""

    def __init__(self, python: str) -> None:
        self.python = python

    def run(self, subcommand: str, *args: object, timeout: float = 300) -> Any:
        cmd = [self.python, str(REFERENCE / "mx_reader.py"), subcommand, *(str(a) for a in args)]
        return _run_json(cmd, f"mx_reader {subcommand}", timeout)

    def im2rec(self, *args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run MXNet's own ``tools/im2rec.py`` (shipped in the wheel) with ``args``."""
        script = Path(self.python).parents[1] / "lib"
        found = sorted(script.glob("python3*/site-packages/mxnet/tools/im2rec.py"))
        if not found:
            raise AssertionError(f"im2rec.py not found under {script}")
        cmd = [self.python, str(found[0]), *(str(a) for a in args)]
        return _run(cmd, "im2rec.py", timeout)


class DALIReader:
    """``read(recs, idx, decode=False)`` runs ``tests/reference/dali_reader.py``."""

    def read(
        self,
        recs: str | os.PathLike[str] | list[str | os.PathLike[str]],
        idx: str | os.PathLike[str],
        *,
        decode: bool = False,
        batch_size: int = 8,
        timeout: float = 300,
    ) -> list[dict[str, Any]]:
        recs = [recs] if isinstance(recs, str | os.PathLike) else list(recs)
        cmd = [sys.executable, str(REFERENCE / "dali_reader.py"), "--idx", str(idx)]
        cmd += ["--batch-size", str(batch_size)]
        if decode:
            cmd.append("--decode")
        cmd += [str(r) for r in recs]
        return _run_json(cmd, "dali_reader", timeout)


@pytest.fixture(scope="session")
def mxnet() -> MXNetReader:
    python = os.environ.get("IMGPREP_MXNET_PYTHON") or str(REPO / ".venv-mx" / "bin" / "python")
    if not Path(python).exists():
        reader_unavailable(f"MXNet reference python not found at {python} (run `make venv-mx`)")
    probe = subprocess.run(
        [python, "-W", "ignore", "-c", "import mxnet, cv2"],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        stdin=subprocess.DEVNULL,
    )
    if probe.returncode != 0:
        reader_unavailable(f"{python} cannot import mxnet and cv2: {probe.stderr.strip()[-500:]}")
    return MXNetReader(python)


@pytest.fixture(scope="session")
def dali() -> DALIReader:
    try:
        found = importlib.util.find_spec("nvidia.dali") is not None
    except ImportError:
        found = False
    if not found:
        reader_unavailable(f"DALI is not installed in {sys.executable} (pip install nvidia-dali-cuda120)")
    return DALIReader()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use a reference reader get its marker, so ``-m "not mxnet"`` works."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        for marker in ("mxnet", "dali"):
            if marker in names:
                item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture
def imgfactory():
    """The :mod:`imgfactory` module (synthetic photo-like images)."""
    import imgfactory as module

    return module


def run_imgprep(*args: object, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``imgprep`` CLI in a subprocess (the real entry point, multiprocessing included)."""
    cmd = [sys.executable, "-c", "from imgprep.cli.main import main; main()", *(str(a) for a in args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        shown = " ".join(map(str, args))
        raise AssertionError(f"imgprep {shown} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def imgprep_cli():
    """``imgprep_cli(*args, check=True)`` runs the CLI and returns the CompletedProcess."""
    return run_imgprep
