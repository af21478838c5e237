"""The docs test's own machinery: extraction, annotations, and how blocks are run and reported.

Seconds, no services: markdown written here, blocks run by bash in a temporary folder.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from docs_harness import Block, DocShell, parse_markdown

from conveyor.processes import free_port

PAGE = """\
# A page

```bash
echo one
```

<!-- docs-test: skip because it needs a Docker engine -->
```sh
docker compose up
```

<!-- docs-test: timeout=5 xfail issue-8 item 1: the export fails -->
```bash
false
```

<!-- docs-test: server port=8123 path=/health timeout=60 -->
```bash
python -m http.server 8123
```

```console
$ conveyor runs \\
    --limit 3
pipeline  run  status
$ echo done
done
```

```yaml
not: run
```

```python
print("not run")
```
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] not in "ZX"


def test_extracts_command_blocks_with_their_lines_and_annotations() -> None:
    blocks, problems = parse_markdown(PAGE, "docs/page.md")
    assert problems == []
    assert [(b.line, b.language, b.annotation.kind) for b in blocks] == [
        (3, "bash", "run"), (8, "sh", "skip"), (13, "bash", "xfail"), (18, "bash", "server"),
        (22, "console", "run")]
    assert blocks[0].id == "docs/page.md:3" and blocks[0].code == "echo one"
    assert blocks[1].annotation.reason == "it needs a Docker engine"
    assert blocks[2].annotation.reason == "issue-8 item 1: the export fails"
    assert blocks[2].annotation.timeout == 5
    server = blocks[3].annotation
    assert (server.port, server.path, server.timeout) == (8123, "/health", 60)


def test_a_console_block_runs_its_dollar_lines_only() -> None:
    blocks, _ = parse_markdown(PAGE, "docs/page.md")
    script, where = blocks[4].script()
    assert script == "conveyor runs \\\n    --limit 3\necho done"
    assert where == [23, 24, 26]


@pytest.mark.parametrize(("annotation", "expected"), [
    ("skip", "every skipped block says why"),
    ("skip it is slow", "every skipped block says why"),
    ("xfail", "name the defect"),
    ("server", "needs port=N"),
    ("server port=80 now", "key=value options only"),
    ("timeout=ten", "bad docs-test option value"),
    ("retries=3", "unknown docs-test option"),
    ("port=80", "for `server` blocks only"),
    ("ignore this one", "unknown docs-test directive"),
])
def test_a_malformed_annotation_is_a_problem(annotation: str, expected: str) -> None:
    text = f"<!-- docs-test: {annotation} -->\n```bash\necho hi\n```\n"
    blocks, problems = parse_markdown(text, "x.md")
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith("x.md:1: ")
    assert blocks[0].problem == problems[0]  # and the block's own test fails with it


@pytest.mark.parametrize("text", [
    "<!-- docs-test: skip because x -->\nSome prose.\n```bash\necho hi\n```\n",
    "<!-- docs-test: skip because x -->\n```yaml\na: 1\n```\n",
    "Text.\n<!-- docs-test: skip because x -->\n",
])
def test_an_annotation_must_sit_right_above_a_command_block(text: str) -> None:
    _, problems = parse_markdown(text, "x.md")
    assert len(problems) == 1 and "docs-test annotation" in problems[0], problems


def _shell(tmp_path: Path) -> DocShell:
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HOME": str(tmp_path)}
    return DocShell(tmp_path, tmp_path / "doc", env)


def _block(code: str, line: int = 10, **annotation: object) -> Block:
    from docs_harness import Annotation

    return Block(doc="docs/page.md", line=line, language="bash", code=code,
                 annotation=Annotation(**annotation))  # type: ignore[arg-type]


def test_a_failing_block_names_the_line_and_shows_its_output(tmp_path: Path) -> None:
    shell = _shell(tmp_path)
    result = shell.run(_block("echo before\necho oops >&2\nls /no/such/folder\necho after"))
    assert result.returncode == 2 and not result.ok
    report = result.report()
    assert report.startswith("docs/page.md:10 (bash block) failed: exit 2")
    assert "    ls /no/such/folder" in report  # the block itself
    assert "before" in result.stdout and "after" not in result.stdout  # set -e stopped it
    # The failing command, at its line in the document (fence on 10, command on 13).
    assert "docs-test: docs/page.md:13: `ls /no/such/folder` exited 2" in report
    shell.close()


def test_a_pipeline_fails_when_any_command_in_it_fails(tmp_path: Path) -> None:
    shell = _shell(tmp_path)
    assert shell.run(_block("false | cat")).returncode == 1  # pipefail
    assert shell.run(_block('echo "$UNSET_VARIABLE"')).returncode == 1  # set -u
    shell.close()


def test_blocks_start_at_the_root_and_share_exports_not_shell_variables(
        tmp_path: Path) -> None:
    shell = _shell(tmp_path)
    first = shell.run(_block("cd /\nexport SHARED=exported\nlocal_only=set"))
    assert first.ok, first.report()
    second = shell.run(_block('pwd\necho "$SHARED ${local_only:-unset} $CONVEYOR_HOME"'))
    assert second.ok, second.report()
    assert second.stdout.split() == [str(tmp_path), "exported", "unset",
                                     str(tmp_path / "doc" / "home")]
    shell.close()


def test_background_jobs_live_until_the_document_is_closed(tmp_path: Path) -> None:
    shell = _shell(tmp_path)
    started = shell.run(_block("sleep 600 &\necho $! > job.pid"))
    assert started.ok, started.report()
    pid = int((tmp_path / "job.pid").read_text())
    assert _alive(pid)
    assert shell.run(_block("kill -0 $(cat job.pid)")).ok  # a later block still sees it
    assert shell.close() == ""
    assert not _alive(pid)


def test_a_block_past_its_timeout_is_stopped_with_its_children(tmp_path: Path) -> None:
    shell = _shell(tmp_path)
    started = time.monotonic()
    result = shell.run(_block("sleep 600 &\necho $! > job.pid\nsleep 600", timeout=1.0))
    assert time.monotonic() - started < 30
    assert result.returncode is None and "timed out after 1s" in result.report()
    assert not _alive(int((tmp_path / "job.pid").read_text()))
    shell.close()


def test_a_process_escaping_its_group_is_killed_and_named(tmp_path: Path) -> None:
    shell = _shell(tmp_path)
    result = shell.run(_block("setsid sleep 600 &\nsleep 1"))
    assert not result.ok
    assert "outside its process group, killed" in result.note and "sleep 600" in result.note
    shell.close()


def test_a_server_block_passes_when_it_answers_and_is_then_stopped(tmp_path: Path) -> None:
    shell = _shell(tmp_path)
    port = free_port()
    result = shell.serve(_block(f"echo serving\npython -m http.server {port} --bind 127.0.0.1",
                                kind="server", port=port, timeout=60.0))
    assert result.ok, result.report()
    assert "serving" in result.stdout
    from docs_harness import _answers

    assert not _answers(f"http://127.0.0.1:{port}/")
    shell.close()


def test_a_server_that_exits_or_never_answers_fails(tmp_path: Path) -> None:
    shell = _shell(tmp_path)
    port = free_port()
    exited = shell.serve(_block("exit 4", kind="server", port=port, timeout=30.0))
    assert not exited.ok and "exited (code 4) before answering" in exited.note
    silent = shell.serve(_block("sleep 600", kind="server", port=port, timeout=2.0))
    assert not silent.ok and "did not answer within 2s" in silent.note
    shell.close()


def test_a_block_writing_into_the_checkout_fails(tmp_path: Path) -> None:
    import subprocess

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shell = DocShell(repo, tmp_path / "doc", {"PATH": os.environ["PATH"]})
    assert shell.run(_block("mkdir -p $CONVEYOR_HOME/store && touch $TMPDIR/scratch")).ok
    result = shell.run(_block("mkdir .conveyor && touch .conveyor/mlflow.db"))
    assert not result.ok and "changed the checkout" in result.note
    assert ".conveyor/" in result.note
    shell.close()
