"""How the embedded default's home is found (ADR 0024)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.store.artifacts import HOME_MARKERS, home_dir, locate_home


@pytest.fixture()
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("CONVEYOR_HOME", raising=False)
    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setenv("HOME", str(user))
    for folder in (tmp_path, *tmp_path.parents):
        if any((folder / marker).exists() for marker in HOME_MARKERS):
            pytest.skip(f"{folder} holds a project marker; the fallback cannot be seen")
    return user


@pytest.mark.parametrize("marker", ["pyproject.toml", ".git"])
def test_the_nearest_project_folder_holds_the_home(tmp_path: Path, no_env: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   marker: str) -> None:
    project = tmp_path / "project"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    (project / marker).touch()
    monkeypatch.chdir(deep)
    found = locate_home()
    assert found.path == project.resolve() / ".conveyor"
    assert str(project.resolve() / marker) in found.reason
    assert home_dir() == found.path


def test_the_specs_folder_comes_before_the_working_folder(tmp_path: Path, no_env: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for project in (one, two):
        (project / "specs").mkdir(parents=True)
        (project / "pyproject.toml").touch()
    monkeypatch.chdir(two)
    assert locate_home(one / "specs").path == one.resolve() / ".conveyor"
    assert locate_home(tmp_path).path == two.resolve() / ".conveyor"  # no project: cwd's


def test_an_existing_conveyor_folder_is_a_marker(tmp_path: Path, no_env: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "repo" / "sub" / ".conveyor").mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()
    monkeypatch.chdir(tmp_path / "repo" / "sub")
    assert locate_home().path == (tmp_path / "repo" / "sub" / ".conveyor").resolve()
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / ".conveyor").touch()  # a file is not a home
    monkeypatch.chdir(tmp_path / "plain")
    assert locate_home().path == no_env.resolve() / ".conveyor"


def test_without_a_project_the_users_home(tmp_path: Path, no_env: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = locate_home(tmp_path)
    assert found.path == no_env.resolve() / ".conveyor"
    assert found.reason == "no project folder found"


def test_conveyor_home_wins(tmp_path: Path, no_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").touch()
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "x" / ".." / "chosen"))
    found = locate_home(tmp_path)
    assert found.path == (tmp_path / "chosen").resolve() and found.reason == "CONVEYOR_HOME"
