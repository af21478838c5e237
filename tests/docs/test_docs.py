"""Every command block of README.md, docs/ and examples/*/README.md runs as written.

Each block is one test, named ``<doc>:<line>``. The blocks of one document run in reading
order in one fresh terminal (see conftest.py): a fresh CONVEYOR_HOME, the real WDBC file as
WDBC_PATH, an S3 server of its own (moto's server mode) with the buckets the document's
commands name, ``.venv/bin`` first on PATH (as after ``source .venv/bin/activate``).
Annotations (``<!-- docs-test: ... -->``, see docs_harness.py) mark the few blocks that are
skipped with a reason, expected to fail (strict), or servers. Why: docs/decisions/0025.
"""

from __future__ import annotations

import re

import pytest
from docs_harness import RESULTS, ROOT, Block, DocShells, collect_blocks

pytestmark = pytest.mark.integration

BLOCKS, PROBLEMS = collect_blocks(ROOT)
_BUCKET = re.compile(r"s3://([a-z0-9][a-z0-9.-]{2,62})(?=[/\s'\"]|$)")


def _buckets(doc: str) -> set[str]:
    """The S3 buckets a document's commands name; its S3 server starts with them."""
    return {m for b in BLOCKS if b.doc == doc for m in _BUCKET.findall(b.code)}


def _param(block: Block) -> object:
    annotation = block.annotation
    marks: list[pytest.MarkDecorator] = []
    if annotation.kind == "skip":
        marks.append(pytest.mark.skip(reason=f"{block.id}: {annotation.reason}"))
    elif annotation.kind == "xfail":
        marks.append(pytest.mark.xfail(strict=True, reason=f"{block.id}: {annotation.reason}"))
    return pytest.param(block, id=block.id, marks=marks)


def test_annotations_are_well_formed() -> None:
    """Every docs-test annotation parses, says why it skips or fails, and sits on a block."""
    assert not PROBLEMS, "\n".join(PROBLEMS)


def test_every_page_with_commands_is_found() -> None:
    """The extractor sees the pages a user starts from (a broken glob would test nothing)."""
    docs = {b.doc for b in BLOCKS}
    expected = {"README.md", "docs/storage.md", "docs/airflow.md",
                "examples/breast_cancer/README.md", "examples/iris_lab/README.md",
                "examples/titanic/README.md"}
    assert expected <= docs, f"no command blocks found in {sorted(expected - docs)}"
    runnable = [b for b in BLOCKS if b.annotation.kind in ("run", "server")]
    assert len(runnable) >= 10, [b.id for b in BLOCKS]


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_block(block: Block, doc_shells: DocShells) -> None:
    """Run one documented block as written; a failure shows the block and its output."""
    if block.problem:
        pytest.fail(block.problem)
    shell = doc_shells.get(block.doc, _buckets(block.doc))
    result = shell.serve(block) if block.annotation.kind == "server" else shell.run(block)
    RESULTS.append(result)
    if not result.ok:
        pytest.fail(result.report(), pytrace=False)
