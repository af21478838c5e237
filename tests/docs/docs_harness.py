"""Run the command blocks of the documentation as a user would: the docs test's machinery.

:func:`collect_blocks` finds every fenced ``bash`` / ``sh`` / ``shell`` / ``console`` block in
README.md, docs/*.md, docs/decisions/*.md and examples/*/README.md, with the annotation
written right above it, if any::

    <!-- docs-test: skip because <reason> -->          not run; the reason is listed
    <!-- docs-test: xfail <reason> -->                  must fail (strict: passing is an error)
    <!-- docs-test: server port=8080 [path=/x] -->      run in the background until it answers
    <!-- docs-test: timeout=600 -->                     seconds allowed (default 300)

Options (``key=value``) may precede ``skip``/``xfail`` and follow ``server``. A
:class:`DocShell` runs one document's blocks in order, each with ``bash`` and ``set -euo
pipefail`` from the repository root, all in one fresh folder (``CONVEYOR_HOME``, ``TMPDIR``);
variables a block exports are seen by the next ones, as in a terminal. Every block runs in its
own process group; background jobs live until the document is done (as in a terminal), then
each group is stopped. A block fails when it exits non-zero, outlives its timeout, leaves a
process outside its group, or changes the checkout (it must write under its home). Why this
design: docs/decisions/0025.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conveyor.processes import free_port, stop_group

__all__ = [
    "DOC_GLOBS",
    "RESULTS",
    "ROOT",
    "Annotation",
    "Block",
    "BlockResult",
    "DocShell",
    "DocShells",
    "collect_blocks",
    "parse_markdown",
]

ROOT = Path(__file__).resolve().parents[2]
DOC_GLOBS = ("README.md", "docs/*.md", "docs/decisions/*.md", "examples/*/README.md")
COMMAND_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})
DEFAULT_TIMEOUT = 300.0
TAIL_LINES = 40
RESULTS: list[BlockResult] = []  # the documentation's blocks run in this session (summary)

# Variables of the developer's own shell that would point a block elsewhere than its fresh
# home and S3 server; the blocks start without them, as on a fresh machine.
_DROPPED_PREFIXES = ("CONVEYOR_", "MLFLOW_", "AIRFLOW", "AWS_", "VIRTUAL_ENV", "PYTEST_",
                     "DOCS_TEST_")
_DROPPED = {"WDBC_PATH", "TITANIC_PATH", "IRIS_LAB_INBOX", "PYTHONPATH"}

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_ANNOTATION_START = "<!-- docs-test:"
_OPTION = re.compile(r"^(?P<key>[a-z_]+)=(?P<value>\S+)$")
_OPTIONS = {"timeout", "port", "path"}


@dataclass(frozen=True)
class Annotation:
    """What a ``<!-- docs-test: ... -->`` comment asks for (``kind`` ``run`` when absent)."""

    kind: str = "run"  # run | skip | xfail | server
    reason: str = ""
    timeout: float = DEFAULT_TIMEOUT
    port: int | None = None
    path: str = "/"


@dataclass(frozen=True)
class Block:
    """One command block: where it is, what it says, and how the suite treats it."""

    doc: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    language: str
    code: str  # the block's text as written
    annotation: Annotation = field(default_factory=Annotation)
    problem: str = ""  # a malformed annotation: the block's test fails with this

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    def script(self) -> tuple[str, list[int]]:
        """The shell text to run and, per line of it, the line in the document."""
        lines = self.code.splitlines()
        if self.language != "console":
            return self.code, [self.line + 1 + i for i in range(len(lines))]
        # A console block: "$ command" lines (and their "\" continuations) run; others are
        # the output shown to the reader.
        kept: list[str] = []
        where: list[int] = []
        continued = False
        for i, text in enumerate(lines):
            if continued or text.startswith("$ "):
                kept.append(text if continued else text[2:])
                where.append(self.line + 1 + i)
                continued = text.rstrip().endswith("\\")
        return "\n".join(kept), where


def _parse_annotation(text: str) -> Annotation:
    """Parse the inside of ``<!-- docs-test: ... -->``; raise ValueError when malformed."""
    tokens = text.split()
    options: dict[str, str] = {}
    while tokens and (match := _OPTION.match(tokens[0])):
        options[match["key"]] = match["value"]
        tokens.pop(0)
    kind = tokens.pop(0) if tokens else "run"
    reason = ""
    if kind == "skip":
        if not tokens or tokens[0] != "because" or len(tokens) < 2:
            raise ValueError("write `skip because <reason>`: every skipped block says why")
        reason = " ".join(tokens[1:])
    elif kind == "xfail":
        if not tokens:
            raise ValueError("write `xfail <reason>`: name the defect the block runs into")
        reason = " ".join(tokens)
    elif kind == "server":
        for token in tokens:
            match = _OPTION.match(token)
            if not match:
                raise ValueError(f"`server` takes key=value options only, not {token!r}")
            options[match["key"]] = match["value"]
        if "port" not in options:
            raise ValueError("`server` needs port=N: the port the block's server answers on")
    elif kind != "run" or tokens:
        raise ValueError(f"unknown docs-test directive {text.strip()!r}; expected "
                         "`skip because ...`, `xfail ...`, `server port=N` or `timeout=S`")
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ValueError(f"unknown docs-test option(s) {sorted(unknown)}; known: "
                         f"{sorted(_OPTIONS)}")
    if "port" in options and kind != "server":
        raise ValueError("port= is for `server` blocks only")
    try:
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        port = int(options["port"]) if "port" in options else None
    except ValueError as exc:
        raise ValueError(f"bad docs-test option value: {exc}") from None
    return Annotation(kind=kind, reason=reason, timeout=timeout, port=port,
                      path=options.get("path", "/"))


def parse_markdown(text: str, doc: str) -> tuple[list[Block], list[str]]:
    """The command blocks of one markdown text, and the problems found with annotations.

    An annotation applies to the fenced block that follows it (blank lines may come between);
    one followed by anything else, or by a block that is not a command block, is a problem.
    """
    blocks: list[Block] = []
    problems: list[str] = []
    lines = text.splitlines()
    pending: tuple[int, str] | None = None  # (line, annotation text)
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(_ANNOTATION_START):
            start = i
            body = stripped[len(_ANNOTATION_START):]
            while "-->" not in body and i + 1 < len(lines):
                i += 1
                body += " " + lines[i].strip()
            if pending is not None:
                problems.append(f"{doc}:{pending[0] + 1}: docs-test annotation not followed "
                                "by a command block")
            pending = (start, body.split("-->", 1)[0])
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            marker, info = fence["fence"], fence["info"].strip()
            language = info.split()[0].lower() if info else ""
            body_lines: list[str] = []
            j = i + 1
            while j < len(lines) and not (
                lines[j].strip().startswith(marker[0] * len(marker))
                and set(lines[j].strip()) == {marker[0]}
            ):
                body_lines.append(lines[j][len(fence["indent"]):]
                                  if lines[j].startswith(fence["indent"]) else lines[j])
                j += 1
            annotation, problem = Annotation(), ""
            if pending is not None:
                try:
                    annotation = _parse_annotation(pending[1])
                except ValueError as exc:
                    problem = f"{doc}:{pending[0] + 1}: {exc}"
                    problems.append(problem)
                if language not in COMMAND_LANGUAGES:
                    problems.append(f"{doc}:{pending[0] + 1}: docs-test annotation above a "
                                    f"```{language} block, which is not run")
                pending = None
            if language in COMMAND_LANGUAGES:
                blocks.append(Block(doc=doc, line=i + 1, language=language,
                                    code="\n".join(body_lines), annotation=annotation,
                                    problem=problem))
            i = j + 1
            continue
        if stripped and pending is not None:
            problems.append(f"{doc}:{pending[0] + 1}: docs-test annotation not followed by a "
                            "command block")
            pending = None
        i += 1
    if pending is not None:
        problems.append(f"{doc}:{pending[0] + 1}: docs-test annotation at the end of the file")
    return blocks, problems


def collect_blocks(root: Path, globs: Iterable[str] = DOC_GLOBS
                   ) -> tuple[list[Block], list[str]]:
    """Every command block of the documentation under ``root``, in reading order."""
    blocks: list[Block] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for pattern in globs:
        for path in sorted(root.glob(pattern)):
            if path in seen or not path.is_file():
                continue
            seen.add(path)
            found, issues = parse_markdown(path.read_text(encoding="utf-8"),
                                           path.relative_to(root).as_posix())
            blocks += found
            problems += issues
    return blocks, problems


# --------------------------------------------------------------------------- running


@dataclass
class BlockResult:
    """How a block ended: exit code (None: timed out or never answered), output, timing."""

    block: Block
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    note: str = ""
    cpu_seconds: float = 0.0  # of the block's reaped processes: load-independent, unlike wall

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.note

    def report(self) -> str:
        """What a reader of a failed test needs: where, the block, the end of its output."""
        how = (f"exit {self.returncode}" if self.returncode is not None else "no exit code")
        code = "\n".join(f"    {line}" for line in self.block.code.splitlines())
        parts = [f"{self.block.id} ({self.block.language} block) failed: {how} after "
                 f"{self.seconds:.1f}s ({self.cpu_seconds:.1f}s CPU)"
                 + (f"; {self.note}" if self.note else ""),
                 f"--- the block ---\n{code}"]
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            tail = text.rstrip().splitlines()[-TAIL_LINES:]
            parts.append(f"--- {name} (last {len(tail)} lines) ---\n" + "\n".join(tail))
        return "\n".join(parts)


_PREAMBLE = """\
set -euo pipefail
if [ -f "$DOCS_TEST_ENV" ]; then source "$DOCS_TEST_ENV"; fi
trap 'export -p > "$DOCS_TEST_ENV"' EXIT
trap 'echo "docs-test: script line $LINENO: \\`$BASH_COMMAND\\` exited $?" >&2' ERR
cd "$DOCS_TEST_ROOT"
"""


class DocShell:
    """One document's terminal: a fresh folder, the environment, the blocks' process groups.

    Args:
        root: the repository root (every block starts there).
        workdir: an empty folder for this document (``home/`` is its CONVEYOR_HOME).
        env: the environment every block starts from (before what earlier blocks exported).
    """

    def __init__(self, root: Path, workdir: Path, env: Mapping[str, str]) -> None:
        self.root = root
        self.workdir = workdir
        self.home = workdir / "home"
        self.tmp = workdir / "tmp"
        self.home.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.env_file = workdir / "exported.sh"
        self.env = {**env, "CONVEYOR_HOME": str(self.home), "TMPDIR": str(self.tmp),
                    "DOCS_TEST_ENV": str(self.env_file), "DOCS_TEST_ROOT": str(root)}
        self._processes: list[subprocess.Popen[bytes]] = []
        self._count = 0

    def _start(self, block: Block) -> tuple[subprocess.Popen[bytes], Path, Path, list[int]]:
        self._count += 1
        stem = self.workdir / f"block{self._count:02d}"
        body, where = block.script()
        script = stem.with_suffix(".sh")
        script.write_text(_PREAMBLE + body + "\n", encoding="utf-8")
        out, err = stem.with_suffix(".out"), stem.with_suffix(".err")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            # Output goes to files, not pipes: a background job the block leaves running
            # keeps a pipe open, and reading it would wait for that job to end.
            process = subprocess.Popen(
                ["bash", str(script)], cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
                stdout=stdout, stderr=stderr, start_new_session=True)
        self._processes.append(process)
        return process, out, err, where

    @staticmethod
    def _read(path: Path, where: list[int], block: Block) -> str:
        text = path.read_text(encoding="utf-8", errors="replace")
        offset = _PREAMBLE.count("\n")

        def doc_line(match: re.Match[str]) -> str:
            index = int(match["n"]) - offset - 1
            line = where[index] if 0 <= index < len(where) else None
            return f"docs-test: {block.doc}:{line}:" if line else match[0]

        return re.sub(r"docs-test: script line (?P<n>\d+):", doc_line, text)

    def run(self, block: Block) -> BlockResult:
        """Run a block to its end (or its timeout); its background jobs keep running."""
        started, cpu, checkout = time.monotonic(), _children_cpu(), _checkout_state(self.root)
        process, out, err, where = self._start(block)
        note = ""
        try:
            returncode: int | None = process.wait(timeout=block.annotation.timeout)
        except subprocess.TimeoutExpired:
            stop_group(process, grace=10)
            returncode, note = None, f"timed out after {block.annotation.timeout:.0f}s"
        note = _join(note, self._kill_escaped(), _checkout_changes(self.root, checkout))
        return BlockResult(block, returncode, self._read(out, where, block),
                           self._read(err, where, block), time.monotonic() - started, note,
                           _children_cpu() - cpu)

    def serve(self, block: Block) -> BlockResult:
        """Start a server block, wait until it answers HTTP on its port, then stop its group.

        A port already taken before the start is a failure: the answer would not be the
        block's.
        """
        port = block.annotation.port
        url = f"http://127.0.0.1:{port}{block.annotation.path}"
        started, cpu, checkout = time.monotonic(), _children_cpu(), _checkout_state(self.root)
        if _answers(url):
            return BlockResult(block, None, "", "", 0.0,
                               f"port {port} already answers before the block starts")
        process, out, err, where = self._start(block)
        note = f"{url} did not answer within {block.annotation.timeout:.0f}s"
        returncode: int | None = None
        while time.monotonic() - started < block.annotation.timeout:
            if _answers(url):
                note, returncode = "", 0
                break
            if process.poll() is not None:
                note = f"the server exited (code {process.returncode}) before answering"
                break
            time.sleep(1)
        stop_group(process, grace=30)
        note = _join(note, self._kill_escaped(), _checkout_changes(self.root, checkout))
        return BlockResult(block, returncode, self._read(out, where, block),
                           self._read(err, where, block), time.monotonic() - started, note,
                           _children_cpu() - cpu)

    def _kill_escaped(self) -> str:
        """Kill the processes of this document outside every block's process group.

        A process escapes its group by starting a session of its own; stopping the group
        would miss it. It is found by this document's folder in its environment.
        """
        groups = {process.pid for process in self._processes}
        escaped: list[str] = []
        for pid in _pids_mentioning(str(self.workdir)):
            try:
                if pid == os.getpid() or os.getpgid(pid) in groups:
                    continue
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, FileNotFoundError):
                continue
            escaped.append(f"{pid} ({command.decode(errors='replace').strip()[:100]})")
        return (f"left {len(escaped)} process(es) outside its process group, killed: "
                + "; ".join(escaped)) if escaped else ""

    def close(self) -> str:
        """Stop every block's process group (background jobs), then any escaped process.

        Returns what escaped, if anything (empty when all ended with their groups).
        """
        for process in self._processes:
            stop_group(process, grace=15)
        return self._kill_escaped()


_CACHES = ("__pycache__", ".pytest_cache", ".ruff_cache", ".pyc")


def _checkout_state(root: Path) -> set[str] | None:
    """``git status`` of the checkout, ignored files included (None outside a git checkout).

    A block must write under its home, never into the repository (a documented command that
    ignores CONVEYOR_HOME would leave ``.conveyor/`` in the user's clone).
    """
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=root,
                              capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return {line for line in done.stdout.splitlines()
            if not any(cache in line for cache in _CACHES)}


def _checkout_changes(root: Path, before: set[str] | None) -> str:
    after = _checkout_state(root)
    if before is None or after is None or after <= before:
        return ""
    return "changed the checkout (a block writes under its home only): " + ", ".join(
        sorted(after - before))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _answers(url: str) -> bool:
    """Whether an HTTP server answers ``url`` with a status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def _pids_mentioning(text: str) -> list[int]:
    """Processes of this user whose environment holds ``text`` (Linux /proc only)."""
    found: list[int] = []
    needle = text.encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


# --------------------------------------------------------------------------- per document


def bin_dir() -> Path:
    """The environment's scripts folder: ``.venv/bin`` of this checkout when it has one."""
    venv = ROOT / ".venv" / "bin"
    return venv if (venv / "conveyor").exists() else Path(sys.executable).parent


class DocShells:
    """Opens one :class:`DocShell` per document, with an S3 server of its own, and closes
    the previous document's (its background jobs and its S3 server) when the next starts."""

    def __init__(self, factory: pytest.TempPathFactory, wdbc: Path) -> None:
        self.factory = factory
        self.wdbc = wdbc
        self.doc: str | None = None
        self.shell: DocShell | None = None
        self._s3: Any = None
        self.escaped: dict[str, str] = {}  # document -> processes killed on closing it

    def get(self, doc: str, buckets: set[str]) -> DocShell:
        """The shell of ``doc``; a new one (fresh home, fresh S3 with ``buckets``) if needed."""
        if doc == self.doc and self.shell is not None:
            return self.shell
        self.close()
        import boto3
        from moto.server import ThreadedMotoServer

        port = free_port()
        self._s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._s3.start()
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="docs-test", aws_secret_access_key="docs-test")
        for bucket in sorted(buckets):
            client.create_bucket(Bucket=bucket)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED}
        if os.environ.get("CONVEYOR_CACHE_DIR"):  # the session's MLflow template (ADR 0043),
            env["CONVEYOR_CACHE_DIR"] = os.environ["CONVEYOR_CACHE_DIR"]  # not the user's cache
        env.update({
            "PATH": f"{bin_dir()}{os.pathsep}{env.get('PATH', '')}",
            "WDBC_PATH": str(self.wdbc),
            "AWS_ACCESS_KEY_ID": "docs-test",
            "AWS_SECRET_ACCESS_KEY": "docs-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        })
        self.shell = DocShell(ROOT, self.factory.mktemp(re.sub(r"\W", "_", doc)), env)
        self.doc = doc
        return self.shell

    def close(self) -> None:
        """Close the open document's shell and stop its S3 server."""
        if self.shell is not None and self.doc is not None:
            escaped = self.shell.close()
            if escaped:
                self.escaped[self.doc] = escaped
        if self._s3 is not None:
            self._s3.stop()
        self.shell, self.doc, self._s3 = None, None, None
