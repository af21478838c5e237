"""Derived columns: the expression language refuses what is not in it, computes what is,
and the model carries the derivation so a saved model computes it from raw rows."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import DataError, SpecError
from conveyor.features.derive import derive_frame, evaluate, resolve_function, source_columns
from conveyor.spec.expressions import ExpressionError, parse, referenced_columns

FRAME = pd.DataFrame({
    "Name": ["Braund, Mr. Owen Harris", "Cumings, Mrs. John Bradley", None,
             "Heikkinen, Miss. Laina"],
    "SibSp": [1, 1, 0, 0], "Parch": [0, 0, 2, 0], "Fare": [7.25, 71.28, np.nan, 7.92],
    "Cabin": [None, "C85", None, None], "Embarked": ["S", "C", "Q", "S"],
})


@pytest.mark.parametrize(("text", "expected"), [
    ("SibSp + Parch + 1", [2, 2, 3, 1]),
    ("Fare / (SibSp + 1)", [3.625, 35.64, np.nan, 7.92]),
    ("where(SibSp + Parch == 0, 1, 0)", [0, 0, 0, 1]),
    ("SibSp > 0 and Parch == 0", [True, True, False, False]),
    ("not (SibSp > 0) or Parch > 1", [False, False, True, True]),
    ('extract(Name, "([A-Za-z]+)\\\\.")', ["Mr", "Mrs", np.nan, "Miss"]),
    ('extract(Name, "^([A-Za-z]+), ([A-Za-z]+)", 2)', ["Mr", "Mrs", np.nan, "Miss"]),
    ("len(Embarked)", [1, 1, 1, 1]),
    ("notnull(Cabin)", [False, True, False, False]),
    ("fillna(Fare, 0)", [7.25, 71.28, 0.0, 7.92]),
    ("isin(Embarked, ['S', 'Q'])", [True, False, True, True]),
    ('contains(Name, "Mrs")', [False, True, False, False]),
    ("round(log1p(Fare), 2)", [2.11, 4.28, np.nan, 2.19]),
    ("clip(SibSp + Parch, 0, 1)", [1, 1, 1, 0]),
    ("max(SibSp, Parch)", [1, 1, 2, 0]),
    ('col("Embarked") == "S"', [True, False, False, True]),
    ("1 < SibSp + Parch + 1 <= 2", [True, True, False, False]),
    ("lower(Embarked)", ["s", "c", "q", "s"]),
])
def test_expressions_compute_over_whole_columns(text: str, expected: list) -> None:
    got = evaluate(text, FRAME)
    assert len(got) == len(FRAME)
    pd.testing.assert_series_equal(got.reset_index(drop=True),
                                   pd.Series(expected).reset_index(drop=True),
                                   check_dtype=False, check_names=False)


@pytest.mark.parametrize(("text", "message"), [
    ("__import__('os').system('id')", "only the listed functions can be called"),
    ("Name.upper()", "only the listed functions can be called"),
    ("Fare.__class__", "attribute access is not allowed"),
    ("Name[0]", "indexing is not allowed"),
    ("(lambda: 1)()", "only the listed functions"),
    ("[x for x in Name]", "ListComp is not allowed"),
    ("eval('1')", "unknown function 'eval'"),
    ("open('/etc/passwd')", "unknown function 'open'"),
    ("log1p(x=Fare)", "takes no keyword arguments"),
    ("where(Fare > 1, 1)", "where() takes 3 arguments, got 2"),
    ("1 if Fare else 0", "use where(c, x, y)"),
    ("Fare @ Fare", "operator MatMult is not allowed"),
    ("Fare is None", "operator Is is not allowed"),
    ('extract(Name, "(")', "is not a regular expression"),
    ('extract(Name, "abc")', "needs a group in parentheses"),
    ("extract(Name, Fare)", "takes its pattern as a string"),
    ('extract(Name, "' + "(a)" * 100 + '")', "at most 200"),
    ("isin(Embarked, Name)", "takes a list of constants"),
    ("Fare +", "syntax error"),
    ("", "an expression is needed"),
    ("1" + " + 1" * 400, "characters; at most 1000"),
    ("b'x'", "constant b'x' is not allowed"),
])
def test_anything_outside_the_language_is_refused_with_where(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse(text)


def test_referenced_columns_skip_function_names_and_read_col() -> None:
    assert referenced_columns(parse('where(len(Name) > 3, col("Fare x"), SibSp)')) == {
        "Name", "Fare x", "SibSp"}
    assert source_columns({"family": "SibSp + Parch", "big": "family > 3",
                           "t": 'extract(Name, "(M)")'}) == ["Parch", "SibSp", "Name"]


def test_derive_frame_names_the_key_and_the_missing_column() -> None:
    with pytest.raises(DataError, match=r"train.csv: derive.size: no column 'Sibsp' in the data"):
        derive_frame(FRAME, {"size": "Sibsp + 1"}, source="train.csv")
    with pytest.raises(DataError, match=r"derive.Fare: column 'Fare' already exists"):
        derive_frame(FRAME, {"Fare": "SibSp + 1"}, source="train.csv")
    with pytest.raises(DataError, match=r"derive.bad: cannot compute 'Name \+ 1'"):
        derive_frame(FRAME, {"bad": "Name + 1"}, source="train.csv")


def test_later_derivations_read_earlier_ones_and_flags_become_0_1() -> None:
    out = derive_frame(FRAME, {"family": "SibSp + Parch + 1", "alone": "family == 1"})
    assert out["alone"].tolist() == [0, 0, 0, 1]
    assert list(out.columns)[-2:] == ["family", "alone"]
    assert "family" not in FRAME.columns  # the input is not changed


@pytest.fixture
def feature_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    package = tmp_path / "my_features"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        import os
        def name_words(frame):
            return frame["Name"].fillna("").str.split().str.len()
        system = os.system
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_features"
    sys.modules.pop("my_features", None)


def test_custom_functions_only_from_the_allowed_packages(
        feature_package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rule = {"words": {"function": "my_features.name_words", "columns": ["Name"]}}
    monkeypatch.delenv("CONVEYOR_FEATURE_MODULES", raising=False)
    with pytest.raises(SpecError, match="needs CONVEYOR_FEATURE_MODULES"):
        derive_frame(FRAME, rule)
    monkeypatch.setenv("CONVEYOR_FEATURE_MODULES", "other_pkg")
    with pytest.raises(SpecError, match="outside CONVEYOR_FEATURE_MODULES"):
        resolve_function("my_features.name_words")
    monkeypatch.setenv("CONVEYOR_FEATURE_MODULES", "my_features")
    assert derive_frame(FRAME, rule)["words"].tolist() == [4, 4, 0, 3]
    # a re-export of something outside the package is refused on the resolved object
    with pytest.raises(SpecError, match="is not a function defined in my_features"):
        resolve_function("my_features.system")
    with pytest.raises(SpecError, match="outside"):
        resolve_function("os.system")


def test_spec_errors_name_the_derived_key_and_its_line(tmp_path: Path) -> None:
    from conveyor.spec import load_spec

    spec = tmp_path / "p.yaml"
    spec.write_text(textwrap.dedent("""\
        name: t
        data: {source: sklearn, name: iris}
        schema: {target: target}
        model: {estimator: logistic_regression}
        derive:
          ratio: sepal_length / sepal_width
          evil: "__import__('os').system('id')"
    """))
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    text = str(caught.value)
    assert "derive.evil" in text and ":7" in text and "only the listed functions" in text


def test_a_model_with_derived_columns_computes_them_from_raw_rows() -> None:
    from sklearn.linear_model import LogisticRegression

    from conveyor.features import build_model_pipeline
    from conveyor.spec.models import PreprocessSpec

    derive = {"family": "SibSp + Parch + 1", "title": 'extract(Name, "([A-Za-z]+)\\\\.")'}
    frame = pd.concat([FRAME] * 10, ignore_index=True)
    y = np.tile([0, 1, 0, 1], 10)
    pipeline = build_model_pipeline(
        {"Fare": "numeric", "Name": "input", "SibSp": "input", "Parch": "input"},
        PreprocessSpec(), LogisticRegression(),
        derive=derive, derived={"family": "numeric", "title": "categorical"})
    pipeline.fit(frame[["Fare", "Name", "SibSp", "Parch"]], y)
    names = list(pipeline[:-1].get_feature_names_out())
    assert "family" in names and any(n.startswith("title_") for n in names)
    assert "Name" not in names  # an input read only by a derivation is not encoded
    import skops.io

    blob = skops.io.dumps(pipeline)
    loaded = skops.io.loads(blob, trusted=skops.io.get_untrusted_types(data=blob))
    raw = frame[["Fare", "Name", "SibSp", "Parch"]].head(4)
    np.testing.assert_array_equal(loaded.predict_proba(raw), pipeline.predict_proba(raw))


def test_validation_keeps_the_columns_derivations_read_and_hands_the_model_its_inputs() -> None:
    from conveyor.spec.models import Spec
    from conveyor.steps.validate import model_inputs, validate_table

    spec = Spec.model_validate({
        "name": "t", "data": {"source": "sklearn", "name": "iris"},
        "schema": {"target": "y", "drop": ["Name"]},
        "validate": {"types": "drop"},
        "model": {"estimator": "logistic_regression"},
        "derive": {"title": 'extract(Name, "([A-Za-z]+)\\\\.")', "size": "SibSp + 1"},
    })
    raw = pd.DataFrame({
        "Name": [f"A, {t}. B" for t in ["Mr", "Mrs", "Miss", "Mr"] * 5],
        "SibSp": [0, 1, 2, 3] * 5, "Fare": ["1.5"] * 19 + ["oops"], "y": [0, 1] * 10})
    table, report = validate_table(derive_frame(raw, spec.derive), spec, source="t.csv")
    table, report = model_inputs(table, report, spec)
    assert report["derived"] == {"title": "categorical", "size": "numeric"}
    assert report["features"]["Name"] == "input"  # dropped as a feature, read by title
    assert "title" not in table.columns and "Name" in table.columns
    assert len(table) == 19  # the row with 'oops' was dropped, from Name too
    assert table["Name"].tolist() == raw["Name"].head(19).tolist()
