"""docs/api.md runs as written: its ``python`` blocks are executed in order, in one namespace,
from the repository's root, so an example that stops working fails here."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from tests.conftest import REPO

API_DOC = REPO / "docs" / "api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_the_doc_has_examples_for_each_part_of_the_api() -> None:
    blocks = python_blocks(API_DOC.read_text(encoding="utf-8"))

    assert len(blocks) >= 8
    for call in ("rundoctor.load(", "rundoctor.diagnose(", ".to_json()", ".to_pandas(", "rundoctor.export(", "LiveDoctor("):
        assert any(call in block for block in blocks), call


def test_the_examples_in_docs_api_md_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    namespace: dict[str, object] = {"__name__": "docs_api"}
    printed = io.StringIO()
    for number, block in enumerate(python_blocks(API_DOC.read_text(encoding="utf-8")), start=1):
        with contextlib.redirect_stdout(printed):
            try:
                exec(compile(block, f"docs/api.md block {number}", "exec"), namespace)
            except Exception as error:  # name the block that broke
                raise AssertionError(f"docs/api.md block {number} failed: {error!r}\n{block}") from error
    assert "rundoctor stopped training at step 60" in printed.getvalue()
