"""Fixtures of the docs test: one fresh terminal (home, S3 server, environment) per document.

The blocks of one document run in reading order in the same :class:`DocShell`; when the
first block of the next document starts, the previous document's shell is closed (its
background jobs stopped, its S3 server stopped).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from docs_harness import RESULTS, ROOT, DocShells, collect_blocks

SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def doc_shells(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocShells]:
    """The documents' shells; the real WDBC file must be there (the docs read it)."""
    wdbc = SHARED_DATA / "wdbc" / "wdbc.data"
    if not wdbc.is_file():
        reason = f"{wdbc} is missing: the documented commands read the real WDBC file"
        if os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1":
            pytest.fail(f"required but unavailable: {reason}")
        pytest.skip(reason)
    shells = DocShells(tmp_path_factory, wdbc)
    yield shells
    shells.close()
    # A block's processes must end with its document; what escaped was killed, and is named.
    assert not shells.escaped, shells.escaped


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List the documented blocks the suite did not run as written, with why."""
    if not any(r.nodeid.startswith("tests/docs/test_docs.py::test_block")
               for outcome in ("passed", "failed", "skipped", "xfailed", "xpassed")
               for r in terminalreporter.stats.get(outcome, [])):
        return
    blocks, _ = collect_blocks(ROOT)
    special = [b for b in blocks if b.annotation.kind in ("skip", "xfail")]
    terminalreporter.section("docs blocks not run as written")
    for block in special:
        terminalreporter.write_line(f"{block.id}: {block.annotation.kind}: "
                                    f"{block.annotation.reason}")
    if RESULTS:
        wall = sum(r.seconds for r in RESULTS)
        cpu = sum(r.cpu_seconds for r in RESULTS)
        terminalreporter.write_line(f"{len(RESULTS)} docs blocks ran: {wall:.0f}s wall, "
                                    f"{cpu:.0f}s CPU; slowest: " + ", ".join(
                                        f"{r.block.id} {r.seconds:.0f}s/{r.cpu_seconds:.0f}s"
                                        for r in sorted(RESULTS, key=lambda r: -r.seconds)[:3]))
