"""The README's examples as a newcomer copies them: the training loop run for real, every Python
block self-contained, the front page's figures found in the pages that measure them."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import imgfactory
import pytest
import torch  # `make venv-test` installs a CPU build (TORCH_SPEC in the Makefile)
from data_fixture import payloads, write_shards
from test_convert_cli import mnist_files

import imgprep

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = REPO / "docs"


def _fenced(text: str) -> list[tuple[str, str]]:
    """``(info, body)`` of every fenced block, list items' indented ones included (dedented)."""
    blocks, info, body, indent = [], None, [], ""
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if info is None and stripped.startswith("```"):
            info, body, indent = stripped[3:], [], line[: len(line) - len(line.lstrip())]
        elif info is not None and stripped == "```" and line.startswith(indent):
            blocks.append((info, textwrap.dedent("".join(body))))
            info = None
        elif info is not None:
            body.append(line)
    return blocks


def _python_blocks(text: str) -> list[str]:
    return [body for info, body in _fenced(text) if info == "python"]


def _training_loop() -> str:
    (loop,) = [b for b in _python_blocks(README) if "from imgprep.data import" in b]
    return loop


def _run_loop(data: Path, cwd: Path, epochs: int, save_every: int) -> subprocess.CompletedProcess[str]:
    """The README's loop with its constants set for a small dataset, reporting its step count."""
    code, n = re.subn(r'^DATA = "[^"]*"', f"DATA = {str(data)!r}", _training_loop(), flags=re.M)
    code, m = re.subn(r"^EPOCHS, SAVE_EVERY = \d+, \d+", f"EPOCHS, SAVE_EVERY = {epochs}, {save_every}", code,
                      flags=re.M)
    assert n == m == 1, "the README's loop sets DATA and EPOCHS, SAVE_EVERY at its top"
    code += "print('steps', step, 'head', model[-1].out_features)\n"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """``prepare folders`` of 3 classes: 9 training images, one batch of 64 per epoch."""
    tmp = tmp_path_factory.mktemp("readme")
    imgfactory.class_tree(tmp / "photos", ["cat", "dog", "eel"], per_class=6)
    imgprep.prepare("folders", tmp / "photos", tmp / "data", split="train=0.5,val=0.5", resize=32, dedup="off")
    record = tmp / "data" / "train.dataset.json"
    meta = json.loads(record.read_text())
    meta["num_classes"] = 3  # what the dataset record says of a 3-class dataset
    record.write_text(json.dumps(meta))
    return tmp / "data"


def test_the_training_loop_checkpoints_by_global_step_and_resumes_counting(prepared: Path, tmp_path: Path) -> None:
    # One step per epoch: a per-epoch step counter (`step % 500 == 499`) would never save.
    first = _run_loop(prepared, tmp_path, epochs=3, save_every=2)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["steps", "3", "head", "3"]  # the head has the dataset's 3 classes
    ckpt = torch.load(tmp_path / "ckpt.pt")
    assert ckpt["step"] == 2 and (ckpt["data"]["epoch"], ckpt["data"]["consumed"]) == (1, 9)  # all 9 of epoch 1

    again = _run_loop(prepared, tmp_path, epochs=4, save_every=2)  # resumes after step 2: epochs 2 and 3
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["steps", "4", "head", "3"]
    assert torch.load(tmp_path / "ckpt.pt")["step"] == 4

    done = _run_loop(prepared, tmp_path, epochs=4, save_every=2)  # saved after the last batch: nothing left
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["steps", "4", "head", "3"]


def test_the_training_loop_stops_with_one_line_when_the_classes_are_unknown(tmp_path: Path) -> None:
    # A bare .rec + .idx has no dataset record: the number of classes is unknown, not 1000.
    (tmp_path / "bare").mkdir()
    write_shards(tmp_path / "bare" / "train", payloads(6))
    proc = _run_loop(tmp_path / "bare", tmp_path, epochs=1, save_every=1)
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"{tmp_path / 'bare'}/train: num_classes is unknown: ") and "num_classes=N" in line
    assert not (tmp_path / "ckpt.pt").exists()


def test_the_python_api_example_runs_as_copied(tmp_path: Path) -> None:
    (block,) = [b for b in _python_blocks(README) if "imgprep.convert(" in b]
    imgfactory.class_tree(tmp_path / "photos", ["cat", "dog", "eel"], per_class=6)
    mnist_files(tmp_path / "fashion-mnist", n_train=20, n_test=10)
    proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data" / "train.rec").stat().st_size > 0
    assert (tmp_path / "fmnist" / "val.rec").stat().st_size > 0
    # The Python API page's format modules, on what the front page's example wrote.
    (formats,) = [b for b in _python_blocks((DOCS / "python-api.md").read_text(encoding="utf-8"))
                  if "recordio.RecordReader" in b]
    proc = subprocess.run([sys.executable, "-c", formats], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "subset.lst").read_text() and (tmp_path / "mine.idx").read_text().startswith("7\t0")


def _launch_commands(text: str) -> list[list[str]]:
    blocks = [body for info, body in _fenced(text) if info in ("", "sh")]
    return [shlex.split(c.replace("\\\n", " ")) for b in blocks for c in re.split(r"\n(?=\S)", b)
            if c.startswith("imgprep launch ")]


def test_every_processing_job_in_the_docs_makes_a_valid_request() -> None:
    from click.testing import CliRunner

    from imgprep.cli.processing import launch

    commands = _launch_commands(README) + _launch_commands((DOCS / "processing.md").read_text(encoding="utf-8"))
    assert len(commands) >= 4
    for words in commands:
        args = [{"IMAGE": "123456789012.dkr.ecr.us-east-1.amazonaws.com/imgprep:1",
                 "ROLE": "arn:aws:iam::123456789012:role/R"}.get(w, w) for w in words[2:]]
        result = CliRunner().invoke(launch, ["--dry-run", *args])
        assert result.exit_code == 0, f"{' '.join(words)}\n{result.output}"
        request = json.loads(result.output)
        assert request["AppSpecification"]["ContainerArguments"] == words[words.index("--") + 1:]


def test_the_training_page_shows_the_readme_loop() -> None:
    assert _training_loop() in _python_blocks((DOCS / "training.md").read_text(encoding="utf-8"))


def test_every_readme_python_block_runs_as_copied() -> None:
    # Each block alone: every name it uses is imported or defined in it (`import imgprep` included).
    for block in _python_blocks(README):
        proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select",
                               "F821,F822,F823", "--stdin-filename", "block.py", "-"], input=block,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{proc.stdout}\n{block}"


def test_every_python_block_in_the_docs_compiles() -> None:
    pages = [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]
    blocks = [(page, block) for page in pages for block in _python_blocks(page.read_text(encoding="utf-8"))]
    assert len(blocks) >= 6
    for page, block in blocks:
        compile(block, str(page), "exec")


def test_the_front_pages_figures_are_those_the_docs_measured() -> None:
    table = README.split("## Performance at a glance", 1)[1].split("\n## ", 1)[0]
    figures = re.findall(r"\d[\d,.]*(?:×| MiB| img/s| s\b)", table)
    assert len(figures) >= 12
    measured = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "performance.md", DOCS / "training.md"))
    measured_numbers = set(re.findall(r"\d[\d,.]*\d|\d", measured))
    for figure in figures:
        number = re.match(r"\d[\d,.]*\d|\d", figure).group()
        assert number in measured_numbers, f"{figure} is not in docs/performance.md or docs/training.md"
