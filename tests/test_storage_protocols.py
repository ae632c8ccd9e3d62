"""The S3 helpers type against what they need of the store (protocols in ``s3_base``), not against
the store: no arrow, not even a type-checking one, points back up from them to ``storage.s3``."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

import imgprep.storage as storage_package
from imgprep.storage import s3_base

HELPERS = ("s3_cleanup", "s3_multipart", "s3_source", "probe")


@pytest.mark.parametrize("name", HELPERS)
def test_the_s3_helpers_do_not_import_the_store(name: str) -> None:
    source = (Path(storage_package.__file__).parent / f"{name}.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert "imgprep.storage.s3" not in imported


@pytest.mark.parametrize("protocol", [s3_base.S3Access, s3_base.S3Uploads, s3_base.S3Reads])
def test_the_store_is_what_the_helpers_type_against(protocol: type) -> None:
    from imgprep.storage.s3 import S3Store

    store = S3Store()
    assert isinstance(store, typing.runtime_checkable(protocol))
