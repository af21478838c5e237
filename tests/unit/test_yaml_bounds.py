"""Bad YAML from the user's side: every reader refuses bombs and odd scalars quickly, exit 2.

Each command runs as a subprocess under a wall-clock timeout and an address-space limit, so
an unbounded reader fails the test (timeout or MemoryError) instead of taking the machine
down. The lab's readers and the Airflow DAG loader run in a subprocess the same way (the DAG
loader in tests/unit/airflow/test_bomb_specs.py).
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conveyor.cli import main
from conveyor.errors import SpecError
from conveyor.lab.configs import ConfigError, parse_config_bytes
from conveyor.spec import load_spec

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer"
EXAMPLE = (EXAMPLE_DIR / "pipeline.yaml").read_text()
PROFILE = (EXAMPLE_DIR / "pipeline.sklearn.yaml").read_text()
CONVEYOR = str(Path(sys.executable).parent / "conveyor")
MEMORY_LIMIT = 1536 * 1024 * 1024  # the real commands need < 1 GiB of address space
TIMEOUT = 60.0  # wall seconds, generous for a loaded machine
FAST = 8.0  # CPU seconds; a bounded reader answers in about one (most of it imports)


def merge_bomb(levels: int = 9, fan: int = 9) -> str:
    """``{<<: [&a8 {<<: [...]}, *a8, *a8, …]}``: fan**levels pairs once merges are flattened."""
    node = "&a0 {k: 1}"
    for level in range(1, levels + 1):
        node = f"&a{level} {{<<: [{node}" + f", *a{level - 1}" * (fan - 1) + "]}"
    return node


def alias_bomb(levels: int = 9, fan: int = 9) -> str:
    """The classic "billion laughs": fan**levels strings once aliases are expanded."""
    node = "&l0 [" + ", ".join(["lol"] * fan) + "]"
    for level in range(1, levels + 1):
        node = f"&l{level} [{node}" + f", *l{level - 1}" * (fan - 1) + "]"
    return node


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bounded(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a command under the time and memory bounds; return it and the CPU seconds it used.

    CPU time, not wall time, is what is asserted: it does not grow when other work shares
    the machine. A timeout fails the test.
    """
    before = cpu_seconds()
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                              preexec_fn=limit_memory, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args[:3]} still running after {TIMEOUT:.0f}s: the reader is unbounded")
    return done, cpu_seconds() - before


def write_spec(folder: Path, text: str, profile: str = PROFILE) -> Path:
    """The example spec (sklearn's bundled copy of the data via its profile) with edits."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.sklearn.yaml").write_text(profile)
    path = folder / "pipeline.yaml"
    path.write_text(text)
    return path


def edit(old: str, new: str, text: str = EXAMPLE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def assert_short_error(stderr: str) -> str:
    """One or two lines, no traceback, no echoed megabytes."""
    message = stderr.strip()
    assert "Traceback" not in message, message[-2000:]
    assert len(message.splitlines()) <= 2 and len(message) < 600, message[:2000]
    return message


# --------------------------------------------------------------------------- spec bombs


PARAMS = "  params: {C: 1.0, max_iter: 1000}"


@pytest.mark.parametrize(("old", "new", "key"), [
    (PARAMS, "  params: {<<: [" + merge_bomb() + "], C: 1.0}", "model.params.<<"),
    ("tags: [example, classification]", "tags: " + alias_bomb(), "tags"),
], ids=["merge-key-bomb", "alias-bomb"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_bomb_spec_is_refused_in_a_second_with_file_and_line(
    tmp_path: Path, conveyor_home: Path, command: str, old: str, new: str, key: str,
) -> None:
    text = edit(old, new)
    assert len(text.encode()) - len(EXAMPLE.encode()) < 700  # a few hundred bytes
    spec = write_spec(tmp_path / "spec", text)
    done, seconds = bounded([CONVEYOR, command, str(spec), "--profile", "sklearn"], tmp_path)
    message = assert_short_error(done.stderr)
    assert done.returncode == 2, message
    assert message.startswith(f"error: {spec}:{line_of(text, new[:12])}: {key}"), message
    assert "expand this spec to more than 20000 values" in message
    assert seconds < FAST
    assert not list(conveyor_home.rglob("_run.json"))  # nothing started


def test_a_bomb_in_a_profile_names_the_profile_file(tmp_path: Path) -> None:
    profile = PROFILE + "tags: " + alias_bomb() + "\n"
    spec = write_spec(tmp_path / "spec", EXAMPLE, profile=profile)
    done, seconds = bounded([CONVEYOR, "validate", str(spec), "--profile", "sklearn"],
                            tmp_path)
    message = assert_short_error(done.stderr)
    assert done.returncode == 2
    overlay = spec.with_name("pipeline.sklearn.yaml")
    assert message.startswith(f"error: {overlay}:{line_of(profile, 'tags:')}: tags."), message
    assert seconds < FAST


def test_an_override_bomb_is_refused_with_a_short_message(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", EXAMPLE)
    override = "model.params.C=" + alias_bomb(levels=7)
    done, seconds = bounded([CONVEYOR, "validate", str(spec), override, "--profile", "sklearn"],
                            tmp_path)
    message = assert_short_error(done.stderr)
    assert done.returncode == 2
    assert message.startswith("error: <command line>: model.params.C: YAML aliases"), message
    assert seconds < FAST


def test_deep_nesting_and_recursive_aliases_are_refused(tmp_path: Path) -> None:
    deep = edit(PARAMS, "  params: {C: 1.0, x: " + "[" * 5000 + "]" * 5000 + "}")
    spec = write_spec(tmp_path / "deep", deep)
    done, _ = bounded([CONVEYOR, "validate", str(spec), "--profile", "sklearn"], tmp_path)
    message = assert_short_error(done.stderr)
    assert done.returncode == 2 and "nested more than 50 levels deep" in message, message
    assert f"{spec}:{line_of(deep, 'params:')}: model.params.x." in message

    looped = edit(PARAMS, "  params: &p {C: 1.0, again: *p}")
    spec = write_spec(tmp_path / "loop", looped)
    done, _ = bounded([CONVEYOR, "validate", str(spec), "--profile", "sklearn"], tmp_path)
    message = assert_short_error(done.stderr)
    assert done.returncode == 2 and "recursive alias" in message, message
    assert f"{spec}:{line_of(looped, 'params:')}: model.params.again: " in message


# --------------------------------------------------------------------------- odd scalars


def test_a_date_is_a_string_and_a_bad_date_no_longer_crashes(tmp_path: Path) -> None:
    text = re.sub(r"description: \|\n(?:  .*\n)+", "description: 2024-02-30\n", EXAMPLE)
    assert "description: 2024-02-30\ntags:" in text
    spec = write_spec(tmp_path / "spec", text)
    done, _ = bounded([CONVEYOR, "validate", str(spec), "--profile", "sklearn"], tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = load_spec(spec, profile="sklearn")
    assert loaded.spec.description == "2024-02-30"  # as written, not a date (ADR 0019)


def test_a_date_where_a_number_belongs_names_file_line_and_key(tmp_path: Path) -> None:
    text = edit("  seed: 42", "  seed: 2024-02-30")
    spec = write_spec(tmp_path / "spec", text)
    done, _ = bounded([CONVEYOR, "validate", str(spec), "--profile", "sklearn"], tmp_path)
    message = assert_short_error(done.stderr)
    assert done.returncode == 2
    assert message.startswith(f"error: {spec}:{line_of(text, 'seed:')}: split.seed: ")
    assert "'2024-02-30'" in message


def test_an_over_long_integer_names_file_line_and_key(tmp_path: Path) -> None:
    text = edit(PARAMS, "  params: {C: 1.0, max_iter: 1000,\n    random_state: " + "9" * 5000
                + "}")
    spec = write_spec(tmp_path / "spec", text)
    done, _ = bounded([CONVEYOR, "validate", str(spec), "--profile", "sklearn"], tmp_path)
    message = assert_short_error(done.stderr)
    assert done.returncode == 2, message
    assert message.startswith(
        f"error: {spec}:{line_of(text, 'random_state')}: model.params.random_state: 99999")
    assert "integer of more than 4300 digits; quote it" in message


def test_base_60_numbers_stay_strings(tmp_path: Path) -> None:
    # YAML 1.1 reads 1:30 as 90 and "1:1:1:…" in quadratic time; YAML 1.2 (and we) do not
    text = edit("  seed: 42", "  seed: 1:30")
    with pytest.raises(SpecError, match=r"valid integer.*got '1:30'"):
        load_spec(write_spec(tmp_path / "spec", text), profile="sklearn")
    started = time.process_time()
    with pytest.raises(SpecError, match="valid integer"):
        load_spec(write_spec(tmp_path / "spec", edit("  seed: 42", "  seed: 1" + ":1" * 200_000)),
                  profile="sklearn")
    assert time.process_time() - started < 2


# --------------------------------------------------------------------------- --run-id


@pytest.mark.parametrize("run_id", ["../../escape", "a/b", "..", "x" * 5000])
def test_an_unsafe_run_id_is_bad_input_naming_the_option(
    tmp_path: Path, conveyor_home: Path, capsys: pytest.CaptureFixture[str], run_id: str,
) -> None:
    spec = write_spec(tmp_path / "spec", EXAMPLE)
    code = main(["run", str(spec), "--profile", "sklearn", "--run-id", run_id])
    message = assert_short_error(capsys.readouterr().err)
    assert code == 2, message
    assert message.startswith("error: --run-id '"), message
    assert "letters, digits, '.', '_' or '-'" in message
    assert not list(conveyor_home.rglob("_run.json"))
    assert not list(tmp_path.rglob("escape"))


# --------------------------------------------------------------------------- the lab


LAB_PROBE = textwrap.dedent("""
    import sys
    from conveyor.errors import ConveyorError
    kind, path = sys.argv[1], sys.argv[2]
    try:
        if kind == "config":
            from conveyor.lab.configs import read_config_file
            read_config_file(path)
        else:
            from conveyor.lab.spec import load_lab
            load_lab(path, env={})
    except ConveyorError as exc:
        print(type(exc).__name__, exc, file=sys.stderr)
        sys.exit(exc.exit_code)
""")


@pytest.mark.parametrize("bomb", [merge_bomb(), alias_bomb()], ids=["merge", "alias"])
def test_a_lab_config_bomb_is_rejected_by_the_lab_reader(tmp_path: Path, bomb: str) -> None:
    config = tmp_path / "bomb.yaml"
    config.write_text(f"model: svc\ndescription: {bomb}\n")
    done, seconds = bounded([sys.executable, "-c", LAB_PROBE, "config", str(config)], tmp_path)
    message = assert_short_error(done.stderr)
    assert done.returncode == 2, message
    assert message.startswith("ConfigError bomb.yaml:2: description"), message
    assert "expand this config to more than 20000 values" in message
    assert seconds < FAST


def test_a_lab_spec_bomb_is_rejected_by_load_lab(tmp_path: Path) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text("name: bomb_lab\nwatch: {folder: in}\ndata: {source: sklearn, name: iris}\n"
                   "model_name: m\ndescription: " + merge_bomb() + "\n")
    done, seconds = bounded([sys.executable, "-c", LAB_PROBE, "lab", str(lab)], tmp_path)
    message = assert_short_error(done.stderr)
    assert done.returncode == 2, message
    assert message.startswith(f"SpecError {lab}:5: description"), message
    assert "expand this lab spec to more than 20000 values" in message
    assert seconds < FAST


def test_a_lab_config_with_a_date_or_a_huge_integer() -> None:
    config, = parse_config_bytes(b"model: svc\ndescription: 2024-02-30\n", "c.yaml")
    assert config.description == "2024-02-30"
    with pytest.raises(ConfigError) as info:
        parse_config_bytes(b"model: svc\nparams:\n  C: " + b"7" * 5000 + b"\n", "c.yaml")
    assert (info.value.file, info.value.line, info.value.key) == ("c.yaml", 3, "params.C")
    assert "more than 4300 digits" in str(info.value) and len(str(info.value)) < 300
