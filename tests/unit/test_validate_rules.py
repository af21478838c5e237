"""``validate.columns`` rules, the ``drop`` policy, the saved schema and its drift, the report.

Small tables straight into :func:`validate_table` (no files, no services); what a file's
lines add is covered by tests/unit/test_validate_table.py, the CLI by
tests/integration/test_validate_schema.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from conveyor.errors import DataError
from conveyor.sources.lines import LineMap
from conveyor.spec.models import Spec, ValidateSpec
from conveyor.steps.validate import validate_table
from conveyor.validation import compare_schema, infer_schema, render_html
from conveyor.validation.problems import RowNamer


def spec(validate: dict[str, Any] | None = None, **schema: Any) -> Spec:
    return Spec.model_validate({
        "name": "t", "data": {"source": "file", "uri": "people.csv"},
        "schema": {"target": "label", **schema}, "validate": validate or {},
        "model": {"estimator": "logistic_regression"}})


def people(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "id": np.arange(rows),
        "age": rng.integers(18, 90, rows).astype(float),
        "city": rng.choice(["Oslo", "Lima", "Pune"], rows),
        "label": np.where(np.arange(rows) % 2 == 0, "yes", "no"),
    })


LINES = LineMap.from_lines(n + 2 + (n >= 10) for n in range(10_000))  # a blank line at 11


def run(frame: pd.DataFrame, the_spec: Spec, baseline: dict[str, Any] | None = None
        ) -> tuple[pd.DataFrame, dict[str, Any]]:
    return validate_table(frame, the_spec, source="people.csv", lines=LINES,
                          baseline=baseline)


def fails(frame: pd.DataFrame, the_spec: Spec, baseline: dict[str, Any] | None = None) -> str:
    with pytest.raises(DataError) as caught:
        run(frame, the_spec, baseline)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- per-column rules


def test_min_and_max_name_rows_lines_and_values() -> None:
    frame = people()
    frame.loc[[3, 12], "age"] = [-1.0, 130.0]
    the_spec = spec({"columns": {"age": {"min": 0, "max": 120}}})
    message = fails(frame, the_spec)
    assert message == ("people.csv: column 'age': 1 rows below validate.columns.age.min 0: "
                       "row 4 (line 5): -1.0 (and 1 more problem: values)")


def test_label_outside_declared_classes_names_its_rows() -> None:
    frame = people()
    frame.loc[[5, 20, 21], "label"] = ["maybe", "Yes", "maybe"]
    message = fails(frame, spec({"columns": {"label": {"allowed": ["yes", "no"]}}}))
    assert message == ("people.csv: target 'label': 3 rows hold values outside "
                       "validate.columns.label.allowed [yes, no]: row 6 (line 7): 'maybe', "
                       "row 21 (line 23): 'Yes', row 22 (line 24): 'maybe'")


def test_nullable_false_names_missing_rows_and_na_text_counts_as_missing() -> None:
    frame = people().astype({"age": object})
    frame.loc[7, "age"] = None  # what "N/A" in a float column becomes (data.na_values)
    message = fails(frame, spec({"columns": {"age": {"nullable": False}}}))
    assert message == ("people.csv: column 'age': 1 rows are missing a value "
                       "(validate.columns.age.nullable is false): row 8 (line 9)")


def test_integer_dtype_and_text_coerced_for_a_numeric_rule() -> None:
    frame = people().astype({"age": object})
    frame.loc[2, "age"] = "41.5"
    message = fails(frame, spec({"columns": {"age": {"dtype": "integer"}}}))
    assert message == ("people.csv: column 'age': 1 rows are not whole numbers "
                       "(validate.columns.age.dtype integer): row 3 (line 4): 41.5")


def test_drop_removes_counts_and_reports_the_rows() -> None:
    frame = people()
    frame.loc[[3, 12, 30], "age"] = [-1.0, 130.0, -5.0]
    table, report = run(frame, spec({"values": "drop",
                                     "columns": {"age": {"min": 0, "max": 120}}}))
    assert len(table) == 37 and table["age"].between(0, 120).all()
    assert report["rows_in"] == 40 and report["rows"] == 37
    assert report["dropped"] == {"rows": 3, "by_check": {"values": 3}}
    below = next(p for p in report["problems"] if "below" in p["message"])
    assert below == {
        "check": "values", "policy": "drop", "column": "age", "count": 2,
        "message": "people.csv: column 'age': 2 rows below validate.columns.age.min 0: row 4 "
                   "(line 5): -1.0, row 31 (line 33): -5.0",
        "rows": [4, 31], "lines": [5, 33]}


def test_rows_named_after_a_drop_are_the_files_rows() -> None:
    frame = people()
    frame.loc[2, "age"] = -1.0
    frame.loc[[20, 25], "label"] = "maybe"  # a third label under a binary spec
    with pytest.raises(DataError, match=r"2 rows hold 'maybe': row 21 \(line 23\), row 26 "
                                        r"\(line 28\)"):
        run(frame, spec({"values": "drop", "columns": {"age": {"min": 0}}},
                        positive_label="yes"))


def test_a_column_policy_wins_and_warn_keeps_the_rows() -> None:
    frame = people()
    frame.loc[3, "age"] = -1.0
    table, report = run(frame, spec({"columns": {"age": {"min": 0, "policy": "warn"}}}))
    assert len(table) == 40 and report["dropped"]["rows"] == 0
    assert report["warnings"][0]["check"] == "values"
    assert "row 4 (line 5): -1.0" in report["warnings"][0]["message"]


def test_duplicate_ids_dropped_keep_the_first_row() -> None:
    frame = people()
    frame.loc[[9, 15], "id"] = 4
    table, report = run(frame, spec({"duplicate_ids": "drop"}, id="id"))
    assert len(table) == 38 and table["id"].is_unique
    assert report["dropped"]["by_check"] == {"duplicate_ids": 2}


def test_missing_target_dropped_when_asked() -> None:
    frame = people()
    frame.loc[[1, 2], "label"] = None
    table, report = run(frame, spec({"target_values": "drop"}))
    assert len(table) == 38 and report["dropped"]["by_check"] == {"target_values": 2}


def test_a_drop_that_leaves_too_few_rows_fails() -> None:
    frame = people(12)
    frame.loc[0:5, "age"] = -1.0
    message = fails(frame, spec({"values": "drop", "columns": {"age": {"min": 0}}}))
    assert message == ("people.csv has 6 rows after dropping 6 (values 6); validate.min_rows "
                       "is 10")


def test_a_rule_on_a_column_not_in_the_table() -> None:
    message = fails(people(), spec({"columns": {"agee": {"min": 0}}}))
    assert message == ("people.csv: column 'agee' (validate.columns) is missing; did you mean "
                       "'age'?")


def test_a_class_with_fewer_rows_than_cv_folds() -> None:
    frame = people()
    frame.loc[[0, 2, 4], "label"] = "rare"
    the_spec = Spec.model_validate({**spec().dump(), "evaluate": {"cv": 5}})
    message = fails(frame, the_spec)
    assert message == ("people.csv: class 'rare' of 'label' has 3 rows; evaluate.cv is 5 "
                       "(each fold needs a row of each class)")


@pytest.mark.parametrize(("validate", "message"), [
    ({"leakage": "drop"}, "drop applies to the checks that find rows"),
    ({"drift": {"policy": "drop"}}, "drift judges whole columns"),
    ({"columns": {"age": {"min": 5, "max": 1}}}, "min 5 is above max 1"),
    ({"columns": {"age": {"dtype": "bool", "min": 0}}}, "do not apply to a bool column"),
    ({"columns": {"age": {"allowed": []}}}, "at least 1 item"),
])
def test_bad_rules_are_spec_errors(validate: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ValidateSpec.model_validate(validate)


def test_a_spec_without_the_new_keys_dumps_as_before() -> None:
    """Old specs keep their hash: the keys issue 12 added are not dumped at their defaults."""
    assert set(spec().dump()["validate"]) == {
        "missing_columns", "types", "empty_columns", "target_values", "duplicate_ids",
        "single_class", "leakage", "min_rows", "max_missing_fraction", "min_class_rows"}
    assert "columns" in spec({"columns": {"age": {"min": 0}}}).dump()["validate"]


# --------------------------------------------------------------------------- the saved schema


def test_first_run_infers_kinds_ranges_categories_and_missing_shares() -> None:
    frame = people()
    frame.loc[[0, 1], "age"] = np.nan
    _, report = run(frame, spec())
    columns = report["schema"]["columns"]
    assert columns["city"] == {"kind": "categorical", "dtype": "str",
                               "missing_share": 0.0, "categories": ["Lima", "Oslo", "Pune"]}
    assert columns["age"]["kind"] == "numeric" and columns["age"]["missing_share"] == 0.05
    assert columns["age"]["min"] == frame["age"].min()
    assert report["baseline"]["status"].startswith("first run")


def drift_of(frame: pd.DataFrame, **drift: Any) -> list[str]:
    saved = infer_schema(people())
    the_spec = spec({"drift": {"policy": "warn", **drift}})
    return [p.message for p in compare_schema(frame, saved, the_spec.validate_.drift,
                                              source="people.csv", namer=RowNamer(LINES))]


def test_drift_new_missing_and_retyped_columns() -> None:
    frame = people().drop(columns=["city"]).assign(extra=1.0)
    frame["age"] = frame["age"].astype(str) + "y"
    assert drift_of(frame) == [
        "people.csv: column 'extra' is new: the saved schema does not have it (accept the new "
        "schema with conveyor schema accept)",
        "people.csv: column 'city' of the saved schema is missing",
        "people.csv: column 'age' changed type: numeric (float64) in the saved schema, "
        "categorical (str) now"]


def test_drift_out_of_range_share_and_unseen_categories() -> None:
    frame = people()
    high = float(people()["age"].max())
    frame.loc[[4, 11], "age"] = high + 10
    frame.loc[6, "city"] = "Rome"
    found = drift_of(frame, max_out_of_range_share=0.02)
    assert found == [
        f"people.csv: column 'age': 2 values (5.0%) are outside the saved range "
        f"[{people()['age'].min():g}, {high:g}], over validate.drift.max_out_of_range_share="
        f"0.02: row 5 (line 6): {high + 10}, row 12 (line 14): {high + 10}",
        "people.csv: column 'city': 1 values (2.5%) are categories never seen ('Rome'), over "
        "validate.drift.max_out_of_range_share=0.02: row 7 (line 8)"]
    assert drift_of(frame, max_out_of_range_share=0.1) == []


def test_drift_missing_share_jump() -> None:
    frame = people()
    frame.loc[0:9, "city"] = None
    assert drift_of(frame) == [
        "people.csv: column 'city' is 25.0% missing, 0.0% in the saved schema (+25.0%, over "
        "validate.drift.max_missing_increase=0.1)"]


def test_drift_policy_fail_stops_and_warn_reports() -> None:
    frame = people()
    frame.loc[6, "city"] = "Rome"
    saved = infer_schema(people())
    message = fails(frame, spec({"drift": {"policy": "fail", "max_out_of_range_share": 0}}),
                    saved)
    assert "categories never seen ('Rome')" in message
    _, report = run(frame, spec({"drift": {"max_out_of_range_share": 0}}), saved)
    assert [w["check"] for w in report["warnings"]] == ["drift"]
    assert report["baseline"]["status"] == "compared"
    _, report = run(frame, spec({"drift": {"policy": "off"}}), saved)
    assert report["warnings"] == [] and report["problems"] == []


# --------------------------------------------------------------------------- the HTML page


def test_the_page_is_self_contained_and_escaped() -> None:
    frame = people()
    frame.loc[3, "city"] = "<script>alert(1)</script>"
    frame.loc[5, "age"] = -1.0
    _, report = run(frame, spec({"values": "drop", "columns": {
        "city": {"allowed": ["Oslo", "Lima", "Pune"]}, "age": {"min": 0}}}))
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page and "https://" not in page
    assert "row 4 (line 5)" in page and "row 6 (line 7)" in page
    assert "<code>values</code>" in page and "rows dropped" in page


def test_the_page_wears_the_run_reports_frame() -> None:
    from conveyor.modeling.report import render_report
    from conveyor.report_page import CSS

    frame = people()
    frame.loc[5, "age"] = -1.0
    _, report = run(frame, spec({"values": "drop", "columns": {"age": {"min": 0}}}))
    validation = render_html(report)
    failed = render_html({**report, "passed": False})
    model = render_report(pipeline="p", run_id="r", metrics={"test_f1": 0.9})
    for page in (validation, failed, model):  # one head, one style sheet, one header
        assert page.startswith('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">')
        assert f"<style>{CSS}</style>" in page and page.count("<header>") == 1
    assert '<span class="verdict passed">PASSED</span>' in validation
    assert '<span class="verdict rejected">FAILED</span>' in failed
    assert '<a href="#problems">Problems</a>' in validation
    assert '<section id="problems">' in validation and 'id="dropped"' in validation
    assert '<span class="drop">drop</span>' in validation and ".drop{" in CSS


def test_unquoted_yes_no_in_allowed_gets_a_hint() -> None:
    """``allowed: [yes, no]`` is read by YAML as booleans; the message says so."""
    the_spec = spec({"columns": {"label": {"allowed": [True, False]}}})
    message = fails(people(), the_spec)
    assert message.startswith("people.csv: target 'label': 40 rows hold values outside "
                              "validate.columns.label.allowed [True, False]: row 1 (line 2): "
                              "'yes'")
    assert message.endswith("(YAML reads yes/no/on/off as true/false: quote the allowed "
                            "values)")


def test_a_numeric_column_without_a_range_shows_a_dash_not_none() -> None:
    page = render_html({"passed": True, "rows_in": 2, "rows_out": 2, "problems": [],
                        "warnings": [], "schema": {"columns": {
                            "id": {"kind": "numeric", "dtype": "int64", "min": None,
                                   "max": None, "missing_share": 0.0},
                            "age": {"kind": "numeric", "dtype": "float64", "min": 1.5,
                                    "max": 80.0, "missing_share": 0.0}}}})
    assert "[None, None]" not in page and "<td>—</td>" in page
    assert "[1.5, 80.0]" in page
