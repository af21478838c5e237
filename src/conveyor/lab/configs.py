"""Classifier config files: every shape people already write, normalised to one model.

Accepted (``.json``, ``.yaml``, ``.yml``)::

    classificator: sklearn.ensemble.RandomForestClassifier   # a dotted import path
    kwargs: {n_estimators: 100}                              # a mapping, or a list of
                                                             # one-key mappings, merged
    {"model": "random_forest", "params": {...}, "name": "rf-small"}   # a short name
    {"module": "sklearn.svm", "classificator": "SVC", "kwargs": {...}} # module + class

and a top-level list, or a ``configs:`` list, of several. Every config is checked before
anything trains: the estimator against the allow-list (on the resolved object), each
parameter name against the estimator's real signature (with the nearest valid name) and
each value by the estimator's own validation. Every problem is a :class:`ConfigError` naming
the file, the line (YAML) and the key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conveyor.errors import SpecError
from conveyor.modeling import SHORT_NAMES, build_estimator, check_params, resolve_estimator
from conveyor.spec import load_yaml
from conveyor.spec.explain import locate, unknown_key_message

__all__ = [
    "CONFIG_SUFFIXES",
    "ClassifierConfig",
    "ConfigError",
    "config_name_from_stem",
    "parse_config_bytes",
    "read_config_file",
]

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
MAX_CONFIGS_PER_FILE = 50
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ESTIMATOR_KEYS = ("classificator", "classifier", "estimator", "model")
_PARAM_KEYS = ("kwargs", "params")
_KEYS = ("name", "description", "module", *_ESTIMATOR_KEYS, *_PARAM_KEYS)
Path_ = tuple[str, ...]


class ConfigError(SpecError):
    """A classifier config file is invalid (names the file, line and key)."""


class ClassifierConfig(BaseModel):
    """One classifier to train: the normalised form of every accepted shape.

    Attributes:
        name: a stable, storage-safe name (given, or the file stem plus an index).
        estimator: the allow-listed import path (``sklearn.svm.SVC``).
        params: keyword arguments, checked against the estimator's signature.
        source: the config file's name.
        index: the config's position in its file (0-based).
        description: free text from the file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME.pattern)
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    source: str
    index: int = Field(ge=0)
    description: str = ""

    @property
    def config_hash(self) -> str:
        """sha256 of the canonical (name, estimator, params): the identity of this config."""
        canonical = json.dumps({"name": self.name, "estimator": self.estimator,
                                "params": self.params}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def build(self) -> Any:
        """A new, unfitted estimator."""
        return build_estimator(self.estimator, dict(self.params), key=self.name,
                               task="classification", task_fixed=True)


def config_name_from_stem(stem: str) -> str:
    """A storage-safe name from a file stem (``"RF small (v2)"`` -> ``"RF-small-v2"``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")
    name = re.sub(r"\.{2,}", ".", name)[:56].rstrip("-._")
    return name or "config"


def read_config_file(path: str | Path) -> list[ClassifierConfig]:
    """Read and normalise a local config file (see :func:`parse_config_bytes`)."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", file=file.name) from None
    return parse_config_bytes(data, file.name)


def parse_config_bytes(data: bytes, filename: str) -> list[ClassifierConfig]:
    """Parse, normalise and check the configs in one file's bytes.

    Args:
        data: the file's content.
        filename: its base name; the suffix picks the parser and the stem names configs.

    Returns:
        One :class:`ClassifierConfig` per config in the file, in order.

    Raises:
        ConfigError: the first problem found, naming the file, line and key.
    """
    suffix = Path(filename).suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise ConfigError(f"unsupported file type {suffix!r}; use " + ", ".join(CONFIG_SUFFIXES),
                          file=filename)
    if suffix == ".json":
        raw, lines = _read_json(data, filename), {}
    else:
        raw, lines = _read_yaml(data, filename)
    items, prefix = _split_file(raw, filename, lines)
    if not items:
        raise ConfigError("the file holds no configs", file=filename, line=1)
    if len(items) > MAX_CONFIGS_PER_FILE:
        raise ConfigError(f"{len(items)} configs in one file; at most {MAX_CONFIGS_PER_FILE}",
                          file=filename)
    where = _Where(filename, lines)
    stem = config_name_from_stem(Path(filename).stem)
    configs: list[ClassifierConfig] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        path = (*prefix, str(index)) if prefix is not None else ()
        default_name = stem if len(items) == 1 else f"{stem}-{index + 1}"
        config = _normalise(item, path, where, index=index, default_name=default_name)
        if config.name in seen:
            raise where.error(f"config name {config.name!r} is used twice in this file "
                              f"(configs {seen[config.name] + 1} and {index + 1})",
                              (*path, "name"))
        seen[config.name] = index
        configs.append(config)
    return configs


# --------------------------------------------------------------------------- reading


def _read_json(data: bytes, filename: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ConfigError(f"duplicate key {key!r}", file=filename, key=key)
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise ConfigError(f"{name} is not a number JSON allows", file=filename)

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"file is not UTF-8 (byte {exc.start})", file=filename) from None
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=filename,
                          line=exc.lineno) from None
    except RecursionError:
        raise ConfigError("JSON is nested too deeply", file=filename) from None


def _read_yaml(data: bytes, filename: str) -> tuple[Any, dict[Path_, int]]:
    # the one bounded YAML reader (tags, alias and merge bombs, duplicate keys, dates)
    try:
        return load_yaml(data, file=filename, what="config")
    except SpecError as exc:
        raise ConfigError(exc.reason, file=filename, line=exc.line, key=exc.key) from None


def _split_file(raw: Any, filename: str, lines: dict[Path_, int]) -> tuple[list[Any], Path_ | None]:
    """The config items of a file and the key path they sit under (None: the file is one)."""
    if isinstance(raw, list):
        return raw, ()
    if isinstance(raw, dict) and "configs" in raw:
        others = sorted(set(raw) - {"configs"})
        if others:
            raise ConfigError(f"a file with 'configs:' holds nothing else; found {others[0]!r}",
                              file=filename, line=lines.get((others[0],)), key=others[0])
        if not isinstance(raw["configs"], list):
            raise ConfigError("'configs' must be a list of configs", file=filename,
                              line=lines.get(("configs",)), key="configs")
        return raw["configs"], ("configs",)
    if isinstance(raw, dict):
        return [raw], None
    raise ConfigError(f"a config file holds a mapping or a list of them, not "
                      f"{type(raw).__name__}", file=filename, line=1)


class _Where:
    def __init__(self, filename: str, lines: dict[Path_, int]) -> None:
        self.filename = filename
        # a key with no line of its own, nor any ancestor with one, names only the file
        self.sources = {(): (filename, None), **{p: (filename, ln) for p, ln in lines.items()}}

    def line(self, path: Path_) -> int | None:
        return locate(self.sources, path)[1]

    def error(self, message: str, path: Path_) -> ConfigError:
        return ConfigError(message, file=self.filename, line=self.line(path),
                           key=".".join(path) or None)


# --------------------------------------------------------------------------- normalising


def _normalise(item: Any, path: Path_, where: _Where, *, index: int,
               default_name: str) -> ClassifierConfig:
    if not isinstance(item, dict):
        raise where.error(f"a config is a mapping (classificator, kwargs, ...), not "
                          f"{type(item).__name__}", path)
    for key in item:
        if key not in _KEYS:
            raise where.error(unknown_key_message(key, _KEYS), (*path, key))
    estimator_path = _estimator_path(item, path, where)
    param_key, params, param_paths = _params(item, path, where)
    key = _first(item, _ESTIMATOR_KEYS) or "classificator"
    try:
        cls = resolve_estimator(estimator_path, key=".".join((*path, key)),
                                task="classification", task_fixed=True)
    except SpecError as exc:
        raise where.error(exc.reason, (*path, key)) from None
    problems = check_params(cls, params)
    if problems:
        param, message = problems[0]
        raise where.error(message, param_paths[param])
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise where.error(f"parameter values must be plain numbers, strings, lists or "
                          f"mappings ({exc})", (*path, param_key)) from None
    # keep the public path: the class's own module (sklearn.ensemble._forest) is private
    public = SHORT_NAMES.get(estimator_path, estimator_path)
    try:
        build_estimator(public, dict(params), key="x", task="classification", task_fixed=True)
    except SpecError as exc:
        raise where.error(exc.reason, (*path, param_key)) from None
    name = item.get("name", default_name)
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise where.error(f"name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit", (*path, "name"))
    description = item.get("description", "")
    if not isinstance(description, str):
        raise where.error("description must be text", (*path, "description"))
    return ClassifierConfig(name=name, estimator=public, params=params,
                            source=where.filename, index=index, description=description)


def _first(item: dict[str, Any], keys: Sequence[str]) -> str | None:
    return next((k for k in keys if k in item), None)


def _estimator_path(item: dict[str, Any], path: Path_, where: _Where) -> str:
    given = [k for k in _ESTIMATOR_KEYS if k in item]
    if not given:
        raise where.error("missing the estimator: add 'classificator: <import path>' "
                          "(e.g. sklearn.ensemble.RandomForestClassifier) or "
                          "'model: <short name>' (e.g. random_forest)", path)
    if len(given) > 1:
        raise where.error(f"give the estimator once; found both {given[0]!r} and {given[1]!r}",
                          (*path, given[1]))
    key = given[0]
    value = item[key]
    if not isinstance(value, str) or not value.strip():
        raise where.error("the estimator is a short name or a dotted import path",
                          (*path, key))
    value = value.strip()
    module = item.get("module")
    if module is None:
        return value
    if not isinstance(module, str) or not re.fullmatch(r"[A-Za-z_][\w.]*", module):
        raise where.error("module is a dotted module path like sklearn.ensemble",
                          (*path, "module"))
    if "." in value:
        raise where.error(f"with 'module: {module}' give only the class name in {key!r}, "
                          f"not the dotted path {value!r}", (*path, key))
    return f"{module}.{value}"


def _params(
    item: dict[str, Any], path: Path_, where: _Where
) -> tuple[str, dict[str, Any], dict[str, Path_]]:
    """The parameter key used, the merged parameters, and each parameter's key path."""
    given = [k for k in _PARAM_KEYS if k in item]
    if len(given) > 1:
        raise where.error("give the parameters once; found both 'kwargs' and 'params'",
                          (*path, given[1]))
    if not given:
        return "kwargs", {}, {}
    key = given[0]
    value = item[key]
    if value is None:
        return key, {}, {}
    if isinstance(value, dict):
        return key, dict(value), {name: (*path, key, str(name)) for name in value}
    if not isinstance(value, list):
        raise where.error(f"{key} is a mapping or a list of one-key mappings, not "
                          f"{type(value).__name__}", (*path, key))
    merged: dict[str, Any] = {}
    paths: dict[str, Path_] = {}
    first_at: dict[str, str] = {}
    for position, entry in enumerate(value):
        entry_path = (*path, key, str(position))
        if not isinstance(entry, dict) or len(entry) != 1:
            raise where.error(f"each item of a {key} list is a mapping with exactly one key "
                              "(- max_depth: 3)", entry_path)
        (name, param), = entry.items()
        if name in merged:
            first_line = where.line(paths[name])
            raise where.error(
                f"parameter {name!r} is given twice (items {first_at[name]} and {position + 1}"
                + (f", first on line {first_line}" if first_line else "")
                + "); give each parameter once", (*entry_path, str(name)))
        merged[name] = param
        paths[name] = (*entry_path, str(name))
        first_at[name] = str(position + 1)
    return key, merged, paths
