"""Bad config: every spec problem is a SpecError naming file, line and key, or exit code 2.

The example spec is edited as text so that the expected line of each error is computed from
the file the loader reads (never hard-coded), and loaded through ``load_spec`` +
``check_spec`` and through the CLI in-process.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from conveyor.cli import main
from conveyor.errors import SpecError
from conveyor.spec import load_spec, parse_override
from conveyor.spec.models import FileSource, SklearnSource
from conveyor.steps import check_spec

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer"
EXAMPLE = (EXAMPLE_DIR / "pipeline.yaml").read_text()
SKLEARN_PROFILE = (EXAMPLE_DIR / "pipeline.sklearn.yaml").read_text()
ENV = {"WDBC_PATH": "/data/wdbc.data"}


def edit(old: str, new: str, text: str = EXAMPLE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the example"
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of ``text`` that contains ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


def write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(path: Path, overrides: tuple[str, ...] = (), *, profile: str | None = None,
         env: dict[str, str] | None = None) -> object:
    loaded = load_spec(path, overrides, profile=profile, env=ENV if env is None else env)
    check_spec(loaded, data=False)  # the data file: tests/integration/test_validate_checks.py
    return loaded


def spec_error(path: Path, overrides: tuple[str, ...] = (), **kwargs: object) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(path, overrides, **kwargs)
    return info.value


def assert_where(err: SpecError, path: Path, line: int | None, key: str | None) -> None:
    assert (err.file, err.line, err.key) == (str(path), line, key), str(err)
    prefix = f"{path}:{line}: " if line else f"{path}: "
    assert str(err).startswith(prefix + (f"{key}: " if key else "")), str(err)
    assert "\n" not in str(err)


# --------------------------------------------------------------------------- the example


def test_example_loads_and_checks(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, EXAMPLE))
    spec = loaded.spec
    assert isinstance(spec.data, FileSource)
    assert spec.data.uri == ENV["WDBC_PATH"]
    assert len(spec.data.columns) == 32
    assert spec.schema_.target == "diagnosis" and spec.schema_.positive_label == "M"
    assert spec.model.params == {"C": 1.0, "max_iter": 1000}
    assert spec.export.uri is None  # ${CONVEYOR_EXPORT_URI:-} leaves the default
    assert len(loaded.spec_hash) == 64


# --------------------------------------------------------------------------- typos


@pytest.mark.parametrize(
    ("old", "new", "key", "suggestion"),
    [
        ("description: |", "descripton: |", "descripton", "description"),
        ("  header: false", "  headers: false", "data.headers", "header"),
        ("  positive_label: M", "  positive_lable: M", "schema.positive_lable", "positive_label"),
        ("split:", "splitt:", "splitt", "split"),
        ("  stratify: true", "  stratifi: true", "split.stratifi", "stratify"),
        ("{impute: median, scale: standard}", "{impute: median, scael: standard}",
         "preprocess.numeric.scael", "scale"),
        ("  name: breast_cancer_classifier", "  nmae: breast_cancer_classifier",
         "registry.nmae", "name"),
    ],
)
def test_typo_key_names_line_key_and_nearest(
    tmp_path: Path, old: str, new: str, key: str, suggestion: str
) -> None:
    text = edit(old, new)
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, new.strip().split(":")[0] + ":"), key)
    assert f"unknown key {key.rsplit('.', 1)[-1]!r}; did you mean {suggestion!r}?" in str(err)


def test_typo_inside_a_plug_in_steps_section_suggests_its_key(tmp_path: Path) -> None:
    """A plug-in's own model (the built-in ``score:`` step's) names the valid keys too; it
    said "valid keys: " with nothing after it."""
    text = EXAMPLE + "score:\n  inptu: rows.csv\n  output: scored.parquet\n"
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, "inptu:"), "score.inptu")
    assert "unknown key 'inptu'; did you mean 'input'?" in str(err)
    far = write(tmp_path, EXAMPLE + "score:\n  zzz: 1\n", "far.yaml")
    message = str(spec_error(far))
    assert "valid keys: " in message and "input" in message.split("valid keys: ")[1]


def test_typo_of_required_key_suggests_it(tmp_path: Path) -> None:
    text = edit("  target: diagnosis", "  targt: diagnosis")
    path = write(tmp_path, text)
    err = spec_error(path)
    assert "targt" in str(err) and "did you mean 'target'?" in str(err)
    assert err.line == line_of(text, "targt:")


def test_typo_in_profile_names_the_profile_file(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    overlay_text = "# prod\nsplit:\n  test_size: 0.3\n  sede: 7\n"
    overlay = write(tmp_path, overlay_text, "pipeline.prod.yaml")
    err = spec_error(path, profile="prod")
    assert_where(err, overlay, 4, "split.sede")
    assert "did you mean 'seed'?" in str(err)


def test_typo_in_override_names_the_command_line(tmp_path: Path) -> None:
    err = spec_error(write(tmp_path, EXAMPLE), ("model.parms.C=1",))
    assert err.file == "<command line>" and err.key == "model.parms"
    assert "did you mean 'params'?" in str(err)


def test_an_error_inside_an_overridden_list_names_the_command_line(tmp_path: Path) -> None:
    """``evaluate.metrics=[accuracy, f2]`` replaced the file's list, but the error on its
    item pointed at the file's line (``metrics: [accuracy, ...]``), which no longer applies."""
    err = spec_error(write(tmp_path, EXAMPLE), ("evaluate.metrics=[accuracy, f2]",))
    assert err.key == "evaluate.metrics.1", err
    assert err.file == "<command line>" and err.line is None, err


# --------------------------------------------------------------------------- types, ranges


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ("  test_size: 0.2", "  test_size: 1.5", "split.test_size", "less than 1, got 1.5"),
        ("  test_size: 0.2", "  test_size: 0", "split.test_size", "greater than 0, got 0"),
        ("  test_size: 0.2", "  test_size: abc", "split.test_size", "valid number"),
        ("  stratify: true", "  stratify: maybe", "split.stratify", "got 'maybe'"),
        ("  seed: 42", "  seed: [4, 2]", "split.seed", "valid integer"),
        ("  format: csv", "  format: xls", "data.format", "got 'xls'"),
        ("  header: false", "  header: 3", "data.header", "valid boolean"),
        ("metrics: [accuracy, precision, recall, f1, roc_auc]",
         "metrics: [accuracy, precision, recall, f1, roc_auc, f3]", "evaluate.metrics.5",
         "got 'f3'"),
        ("{impute: median, scale: standard}", "{impute: median, scale: zscore}",
         "preprocess.numeric.scale", "got 'zscore'"),
        ("name: breast_cancer\n", "name: ../etc/passwd\n", "name", "got '../etc/passwd'"),
        ("  id: id", "  id: [id]", "schema.id", "valid string"),
        ("  source: file", "  source: ftp", "data", "'file', 'sklearn'"),
    ],
)
def test_wrong_type_or_range(tmp_path: Path, old: str, new: str, key: str,
                             expected: str) -> None:
    text = edit(old, new)
    path = write(tmp_path, text)
    err = spec_error(path)
    needle = new.strip().splitlines()[0]
    if key == "evaluate.metrics.5":
        needle = "metrics:"
    if key == "data":
        needle = "data:"
    assert_where(err, path, line_of(text, needle), key)
    assert expected in str(err)


@pytest.mark.parametrize(
    ("section", "key", "expected"),
    [
        ("validate:\n  min_rows: 0\n", "validate.min_rows", "greater than or equal to 1"),
        ("validate:\n  leakage: maybe\n", "validate.leakage", "got 'maybe'"),
        ("validate:\n  max_missing_fraction: 1.5\n", "validate.max_missing_fraction",
         "less than or equal to 1"),
        ("evaluate2: {}\n", "evaluate2", "did you mean 'evaluate'?"),
    ],
)
def test_wrong_value_in_appended_section(tmp_path: Path, section: str, key: str,
                                         expected: str) -> None:
    text = EXAMPLE + section
    path = write(tmp_path, text)
    err = spec_error(path)
    last = key.rsplit(".", 1)[-1]
    assert_where(err, path, line_of(text, f"{last}:"), key)
    assert expected in str(err)


def test_not_a_mapping_and_empty_and_broken_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    assert "YAML mapping" in str(spec_error(path))
    path = write(tmp_path, "")
    assert str(spec_error(path)) == f"{path}: spec file is empty"
    text = EXAMPLE + "broken: [1, 2\n"
    path = write(tmp_path, text)
    err = spec_error(path)
    assert "invalid YAML" in str(err) and err.line is not None
    assert err.line >= line_of(text, "broken:")
    err = spec_error(tmp_path / "missing.yaml")
    assert str(err) == f"{tmp_path / 'missing.yaml'}: spec file not found"


def test_non_utf8_spec_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_bytes(EXAMPLE.encode() + b"# caf\xe9\n")
    assert "not UTF-8" in str(spec_error(path))


def test_oversized_spec_is_refused(tmp_path: Path) -> None:
    text = EXAMPLE + "# " + "x" * (1024 * 1024) + "\n"
    assert "bytes, more than" in str(spec_error(write(tmp_path, text)))


# --------------------------------------------------------------------------- duplicate keys


def test_duplicate_nested_key(tmp_path: Path) -> None:
    text = edit("  seed: 42", "  seed: 42\n  seed: 43")
    path = write(tmp_path, text)
    err = spec_error(path)
    first = line_of(text, "seed: 42")
    assert_where(err, path, first + 1, "split.seed")
    assert f"duplicate key 'seed' (first on line {first})" in str(err)


def test_duplicate_section(tmp_path: Path) -> None:
    text = EXAMPLE + "split:\n  test_size: 0.5\n"
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, len(text.splitlines()) - 1, "split")
    assert f"(first on line {line_of(text, 'split:')})" in str(err)


def test_duplicate_key_in_flow_mapping(tmp_path: Path) -> None:
    text = edit("{C: 1.0, max_iter: 1000}", "{C: 1.0, max_iter: 1000, C: 100}")
    err = spec_error(write(tmp_path, text))
    assert err.key == "model.params.C" and "duplicate key 'C'" in str(err)


# --------------------------------------------------------------------------- tags, aliases


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
        "!!python/object:collections.OrderedDict {{}}",
        "!!python/module:os",
        "!custom_tag logistic_regression",
    ],
)
def test_unsafe_tags_are_refused_and_never_run(tmp_path: Path, value: str) -> None:
    marker = tmp_path / "pwned"
    text = edit("  estimator: logistic_regression",
                "  estimator: " + value.format(marker=marker))
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, "estimator:"), "model.estimator")
    assert "is not allowed; specs hold plain data only" in str(err)
    assert not marker.exists()


def test_tag_on_the_whole_document_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path, f"!!python/object/apply:os.system ['touch {marker}']\n")
    err = spec_error(path)
    assert "is not allowed" in str(err) and err.line == 1
    assert not marker.exists()


def test_standard_tags_still_work(tmp_path: Path) -> None:
    text = edit("  test_size: 0.2", "  test_size: !!float 0.25")
    assert load(write(tmp_path, text)).spec.split.test_size == 0.25


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    path = write(tmp_path, "\n".join(lines) + "\n")  # 9**10 strings once expanded
    started = time.perf_counter()
    err = spec_error(path)
    assert time.perf_counter() - started < 2.0
    assert "expand this spec to more than 20000 values" in str(err)
    assert (err.file, err.line) == (str(path), 5)  # lol4 is the first level past the budget


def test_small_aliases_and_merge_keys_are_fine(tmp_path: Path) -> None:
    text = edit("  seed: 42", "  seed: &seed 42")
    text = edit("params: {C: 1.0, max_iter: 1000}",
                "params: {<<: {C: 0.5}, max_iter: 1000, random_state: *seed}", text)
    loaded = load(write(tmp_path, text))
    assert loaded.spec.model.params == {"C": 0.5, "max_iter": 1000, "random_state": 42}


def test_a_key_beside_a_merge_key_overrides_the_merged_one(tmp_path: Path) -> None:
    # YAML's merge rule: the mapping's own keys win, then earlier merge sources
    text = edit("params: {C: 1.0, max_iter: 1000}",
                "params:\n    <<: [{C: 0.5, max_iter: 10}, {max_iter: 20, tol: 0.01}]\n"
                "    max_iter: 1000")
    path = write(tmp_path, text)
    loaded = load(path)
    assert loaded.spec.model.params == {"C": 0.5, "max_iter": 1000, "tol": 0.01}
    file, line = loaded.sources[("model", "params", "max_iter")]
    assert (file, line) == (str(path), line_of(text, "max_iter: 1000"))


# --------------------------------------------------------------------------- ${ENV}


def test_env_interpolation_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    loaded = load(path, env={"WDBC_PATH": "/elsewhere/wdbc.data",
                             "CONVEYOR_EXPORT_URI": "s3://bucket/models"})
    assert loaded.spec.data.uri == "/elsewhere/wdbc.data"
    assert loaded.spec.export.uri == "s3://bucket/models"
    defaulted = load(path, env={})
    assert defaulted.spec.data.uri == "../../../shared/data/wdbc/wdbc.data"
    assert defaulted.spec.export.uri is None
    assert loaded.spec_hash != defaulted.spec_hash


def test_env_from_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WDBC_PATH", "/from/process.data")
    monkeypatch.setenv("CONVEYOR_TEST_NAME", "bc_env")
    text = edit("name: breast_cancer\n", "name: ${CONVEYOR_TEST_NAME}\n")
    loaded = load_spec(write(tmp_path, text))
    assert loaded.spec.data.uri == "/from/process.data"
    assert loaded.spec.name == "bc_env"


def test_env_inside_a_longer_string(tmp_path: Path) -> None:
    text = edit("  uri: ${CONVEYOR_EXPORT_URI:-}", "  uri: s3://${BUCKET:-dflt}/m/${STAGE}")
    loaded = load(write(tmp_path, text), env={**ENV, "STAGE": "prod"})
    assert loaded.spec.export.uri == "s3://dflt/m/prod"


def test_missing_env_var_names_it_and_where(tmp_path: Path) -> None:
    text = edit("${WDBC_PATH:-../../../shared/data/wdbc/wdbc.data}", "${WDBC_PATH}")
    path = write(tmp_path, text)
    err = spec_error(path, env={})
    assert_where(err, path, line_of(text, "${WDBC_PATH}"), "data.uri")
    assert "environment variable WDBC_PATH is not set" in str(err)
    assert "${WDBC_PATH:-default}" in str(err)


@pytest.mark.parametrize(
    "name",
    ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "DB_PASSWORD", "OPENAI_API_KEY", "MY_APIKEY",
     "GCP_CREDENTIALS", "aws_access_key_id"],
)
def test_secret_looking_env_var_is_refused(tmp_path: Path, name: str) -> None:
    secret = "s3cr3t-value-never-shown"
    text = edit("  uri: ${CONVEYOR_EXPORT_URI:-}", f"  uri: ${{{name}:-x}}")
    path = write(tmp_path, text)
    err = spec_error(path, env={**ENV, name: secret})
    assert_where(err, path, line_of(text, name), "export.uri")
    assert "looks like a secret" in str(err)
    assert secret not in str(err)


# --------------------------------------------------------------------------- inline secrets


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("  format: csv", "  format: csv\n  storage_options: {secret: hunter2}",
         "data.storage_options"),
        ("  format: csv", "  format: csv\n  storage_options: {anon: false, Token: hunter2}",
         "data.storage_options"),
        ("  uri: ${CONVEYOR_EXPORT_URI:-}",
         "  uri: ${CONVEYOR_EXPORT_URI:-}\n  storage_options:\n    key: AKIAhunter2",
         "export.storage_options"),
    ],
)
def test_inline_secret_in_storage_options(tmp_path: Path, old: str, new: str,
                                          key: str) -> None:
    text = edit(old, new)
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, "storage_options"), key)
    assert "inline secret" in str(err) and "hunter2" not in str(err)


def test_inline_secret_in_store_section_and_override(tmp_path: Path) -> None:
    text = EXAMPLE + "store:\n  storage_options: {aws_secret_access_key: hunter2}\n"
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, "aws_secret_access_key"), "store.storage_options")
    err = spec_error(write(tmp_path, EXAMPLE), ("store.storage_options.password=hunter2",))
    assert err.file == "<command line>" and err.key == "store.storage_options"
    assert "hunter2" not in str(err)


# --------------------------------------------------------------------------- profiles


def test_sklearn_profile_switches_the_source_whole(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    write(tmp_path, SKLEARN_PROFILE, "pipeline.sklearn.yaml")
    loaded = load(path, profile="sklearn", env={})
    spec = loaded.spec
    # a section whose source changes is replaced, not merged: no uri/columns left over
    assert isinstance(spec.data, SklearnSource)
    assert loaded.resolved["data"] == {"source": "sklearn", "name": "breast_cancer"}
    # other sections merge key by key
    assert spec.schema_.id is None
    assert spec.schema_.target == "diagnosis" and spec.schema_.positive_label == "M"
    assert spec.model.params == {"C": 1.0, "max_iter": 1000}
    assert loaded.profile == "sklearn"
    assert loaded.spec_hash != load(path).spec_hash


def test_profile_merges_same_source_key_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    write(tmp_path, "data:\n  max_bytes: 1000000\nsplit:\n  test_size: 0.3\n",
          "pipeline.prod.yaml")
    spec = load(path, profile="prod").spec
    assert isinstance(spec.data, FileSource)
    assert spec.data.max_bytes == 1_000_000 and len(spec.data.columns) == 32
    assert (spec.split.test_size, spec.split.seed, spec.split.stratify) == (0.3, 42, True)


def test_profile_errors(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    err = spec_error(path, profile="nope")
    assert "pipeline.nope.yaml" in str(err) and err.file == str(path)
    err = spec_error(path, profile="../../etc/passwd")
    assert "must be letters, digits" in str(err)
    overlay = write(tmp_path, "split:\n  test_size: 2\n", "pipeline.bad.yaml")
    err = spec_error(path, profile="bad")
    assert_where(err, overlay, 2, "split.test_size")


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("model.params.C=0.3", ("model", "params", "C"), 0.3),
        ("split.stratify=false", ("split", "stratify"), False),
        ("split.seed=7", ("split", "seed"), 7),
        ("evaluate.metrics=[accuracy, f1]", ("evaluate", "metrics"), ["accuracy", "f1"]),
        ("model.params.class_weight=null", ("model", "params", "class_weight"), None),
        ("registry.name=other_name", ("registry", "name"), "other_name"),
        ("gate.test_f1={min: 0.5, max: 0.99}", ("gate", "test_f1"), {"min": 0.5, "max": 0.99}),
        ("description=a=b", ("description",), "a=b"),
    ],
)
def test_parse_override_types(text: str, path: tuple[str, ...], value: object) -> None:
    key, parsed = parse_override(text)
    assert key == path
    assert parsed == value and type(parsed) is type(value)


def test_overrides_apply_in_order_and_change_the_hash(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    base = load(path)
    loaded = load(path, ("model.params.C=0.3", "split.stratify=false",
                         "evaluate.metrics=[accuracy, f1]", "split.seed=7", "split.seed=8",
                         "data.columns.0=ident"))
    spec = loaded.spec
    assert spec.model.params == {"C": 0.3, "max_iter": 1000}
    assert isinstance(spec.model.params["C"], float)
    assert spec.split.stratify is False and spec.split.seed == 8
    assert spec.evaluate.metrics == ["accuracy", "f1"]
    assert spec.data.columns[0] == "ident"
    assert loaded.overrides[0] == "model.params.C=0.3"
    assert loaded.spec_hash != base.spec_hash
    assert load(path, ("model.params.C=1.0",)).spec_hash == base.spec_hash


def test_override_scientific_float(tmp_path: Path) -> None:
    spec = load(write(tmp_path, EXAMPLE), ("model.params.C=1e-3",)).spec
    assert spec.model.params["C"] == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("nodot", "is not of the form key.path=value"),
        ("=3", "is not of the form key.path=value"),
        ("model..C=3", "is not of the form key.path=value"),
        ("data.uri.x=1", "cannot set a key inside a value"),
        ("split.test_size=2", "less than 1"),
        ("split.stratify=perhaps", "valid boolean"),
    ],
)
def test_bad_override(tmp_path: Path, override: str, message: str) -> None:
    err = spec_error(write(tmp_path, EXAMPLE), (override,))
    assert err.file == "<command line>" and message in str(err)


# --------------------------------------------------------------------------- gate


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("  test_log_loss: 0.5", "metric 'log_loss' is not computed; evaluate.metrics has "
                                 "accuracy, f1, precision, recall, roc_auc"),
        ("  test_recal: 0.5", "metric 'recal' is not computed; did you mean 'test_recall'?"),
        ("  cv_f1: 0.5", "a cv_ metric needs evaluate.cv to be set"),
    ],
)
def test_gate_metric_not_computed(tmp_path: Path, new: str, message: str) -> None:
    text = edit("  test_f1: 0.93", new)
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, new.strip()), "gate." + new.strip().split(":")[0])
    assert message in str(err)


def test_gate_key_not_a_metric_name(tmp_path: Path) -> None:
    text = edit("  test_f1: 0.93", "  f1: 0.93")
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, "gate:"), "gate")
    assert "gate key 'f1' is not a metric name like 'test_f1'" in str(err)


def test_gate_metric_computed_when_added_to_evaluate(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, EXAMPLE),
                  ("evaluate.metrics=[accuracy, f1, log_loss]", "gate.test_log_loss={max: 0.5}"))
    assert loaded.spec.gate.bounds()["test_log_loss"].max == 0.5


# --------------------------------------------------------------------------- estimators


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        ("logistic_regresion", "unknown estimator 'logistic_regresion'; did you mean "
                               "'logistic_regression'?"),
        ("sklearn.linear_model.LogisticRegresion", "did you mean "
                                                   "sklearn.linear_model.LogisticRegression?"),
        ("sklearn.linear_model.LinearRegression", "is a regressor, but the task is classification"),
        ("sklearn.nonexistent.Thing", "cannot import 'sklearn.nonexistent'"),
        ("xgboostx.XGBClassifier", "outside the allow-list"),
        ("sklearn.base.clone", "not an allowed estimator class"),
    ],
)
def test_bad_estimator(tmp_path: Path, estimator: str, message: str) -> None:
    text = edit("  estimator: logistic_regression", f"  estimator: {estimator}")
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, "estimator:"), "model.estimator")
    assert message in str(err)


@pytest.mark.parametrize(
    "estimator",
    ["os.system", "logging.os.system", "builtins.eval", "subprocess.Popen",
     "sklearnx.evil.Classifier", "pickle.loads", "sklearn.os.system"],
)
def test_estimator_outside_allow_list(tmp_path: Path, estimator: str) -> None:
    text = edit("  estimator: logistic_regression", f"  estimator: {estimator}")
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, "estimator:"), "model.estimator")
    assert ("outside the allow-list" in str(err) or "cannot import" in str(err)
            or "not an allowed estimator" in str(err)), str(err)


@pytest.mark.parametrize(
    "estimator",
    [
        "sklearn.utils._testing.MinimalClassifier",
        "sklearn.utils._mocking.CheckingClassifier",
        "sklearn.linear_model._private_thing",
    ],
)
def test_private_estimator_paths_are_refused(tmp_path: Path, estimator: str) -> None:
    text = edit("  estimator: logistic_regression", f"  estimator: {estimator}")
    text = edit("params: {C: 1.0, max_iter: 1000}", "params: {}", text)
    err = spec_error(write(tmp_path, text))
    assert err.key == "model.estimator"
    assert "outside the allow-list" in str(err)


def test_unknown_param_with_nearest_name(tmp_path: Path) -> None:
    text = edit("{C: 1.0, max_iter: 1000}", "{C: 1.0, max_iters: 1000}")
    path = write(tmp_path, text)
    err = spec_error(path)
    assert_where(err, path, line_of(text, "max_iters"), "model.params.max_iters")
    assert "LogisticRegression has no parameter 'max_iters'; did you mean 'max_iter'?" in str(err)


@pytest.mark.parametrize("estimator", ["lightgbm", "lightgbm.LGBMClassifier"])
def test_a_lightgbm_parameter_outside_get_params_is_accepted_and_a_typo_is_not(
        tmp_path: Path, estimator: str) -> None:
    # verbose (and min_data_in_leaf) reach LightGBM through **kwargs: not a typo
    text = edit("  estimator: logistic_regression", f"  estimator: {estimator}")
    good = edit("{C: 1.0, max_iter: 1000}", "{verbose: -1, min_data_in_leaf: 5}", text)
    loaded = load(write(tmp_path, good))
    assert loaded.spec.model.params == {"verbose": -1, "min_data_in_leaf": 5}
    typo = edit("{C: 1.0, max_iter: 1000}", "{verbos: -1}", text)
    path = write(tmp_path, typo)
    err = spec_error(path)
    assert_where(err, path, line_of(typo, "verbos"), "model.params.verbos")
    assert "has no parameter 'verbos'; did you mean 'verbose'?" in str(err)


def test_unknown_tune_param(tmp_path: Path) -> None:
    text = edit("{C: 1.0, max_iter: 1000}",
                "{C: 1.0, max_iter: 1000}\n  tune:\n    params: {CC: [0.1, 1.0]}")
    path = write(tmp_path, text)
    err = spec_error(path)
    assert err.key == "model.tune.params.CC" and err.line == line_of(text, "CC:")
    assert "did you mean 'C'?" in str(err)


def test_bad_param_value_fails_check_spec(tmp_path: Path) -> None:
    err = spec_error(write(tmp_path, EXAMPLE), ("model.params.C=abc",))
    assert err.key is not None and err.key.startswith("model.params")


# --------------------------------------------------------------------------- the CLI


CLI_CASES = [
    pytest.param("  test_size: 0.2", "  test_sise: 0.2", "split.test_sise", "did you mean",
                 id="typo"),
    pytest.param("  seed: 42", "  seed: 42\n  seed: 1", "split.seed", "duplicate key",
                 id="duplicate"),
    pytest.param("  estimator: logistic_regression",
                 "  estimator: !!python/object/apply:os.system ['true']", "model.estimator",
                 "is not allowed", id="python-tag"),
    pytest.param("  estimator: logistic_regression", "  estimator: logging.os.system",
                 "model.estimator", "outside the allow-list", id="allow-list"),
    pytest.param("  estimator: logistic_regression", "  estimator: random_forrest",
                 "model.estimator", "did you mean 'random_forest'?", id="unknown-estimator"),
    pytest.param("{C: 1.0, max_iter: 1000}", "{C: 1.0, max_iter: 1000, penalti: l2}",
                 "model.params.penalti", "did you mean 'penalty'?", id="unknown-param"),
    pytest.param("  test_f1: 0.93", "  test_f2: 0.93", "gate.test_f2", "is not computed",
                 id="gate-metric"),
    pytest.param("  stratify: true", "  stratify: sometimes", "split.stratify",
                 "valid boolean", id="wrong-type"),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("old", "new", "key", "message"), CLI_CASES)
def test_cli_bad_spec_exit_2_short_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path,
    command: str, old: str, new: str, key: str, message: str,
) -> None:
    text = edit(old, new)
    path = write(tmp_path, text)
    code = main([command, str(path)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith(f"error: {path}:"), err
    assert f": {key}: " in lines[0] and message in err
    assert "Traceback" not in err
    # a spec error stops everything before any run is created
    assert not (conveyor_home / "artifacts").exists()
    assert not (conveyor_home / "mlflow.db").exists()


def test_cli_missing_file_bad_override_bad_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WDBC_PATH", "/data/wdbc.data")
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    missing = tmp_path / "nope.yaml"
    assert capsys.readouterr().err.strip() == f"error: {missing}: spec file not found"
    path = write(tmp_path, EXAMPLE)
    assert main(["validate", str(path), "split.test_size=7"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: <command line>: split.test_size:") and "\n" not in err
    assert main(["run", str(path), "--profile", "missing"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pipeline.missing.yaml" in err and "\n" not in err
    assert main(["run", str(path), "--step", "fly", "--run-id", "x"]) == 2
    assert "'fly' is not a step" in capsys.readouterr().err


def test_cli_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch, wdbc_path: Path) -> None:
    monkeypatch.setenv("WDBC_PATH", str(wdbc_path))  # validate checks that the file is there
    path = write(tmp_path, EXAMPLE)
    assert main(["validate", str(path), "model.params.C=0.5"]) == 0
    out = capsys.readouterr()
    assert "pipeline breast_cancer is valid" in out.out and out.err == ""
    loaded = load_spec(path, ["model.params.C=0.5"])
    assert f"spec hash: {loaded.spec_hash[:12]}" in out.out


def test_yaml_dump_of_example_round_trips(tmp_path: Path) -> None:
    """The integration tests write specs with yaml.safe_dump: the result must load the same."""
    data = yaml.safe_load(EXAMPLE)
    path = write(tmp_path, yaml.safe_dump(data, sort_keys=False))
    assert load(path).spec_hash == load(write(tmp_path, EXAMPLE, "orig.yaml")).spec_hash
