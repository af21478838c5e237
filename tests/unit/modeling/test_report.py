"""The run's HTML report: every section, images embedded, nothing fetched from elsewhere,
values escaped, the verdict in the header."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pytest

from conveyor.modeling.plots import confusion_plot
from conveyor.modeling.report import metric_rows, render_report

PNG = confusion_plot({"labels": ["B", "M"], "matrix": [[70, 2], [3, 39]]}, title="test")
SEARCH = {  # Contract A, as the train step writes it
    "method": "optuna", "metric": "f1", "direction": "maximize", "cv": 5, "n_trials": 3,
    "stopped_by": "trials",
    "best": {"candidate": "logistic_regression", "params": {"C": 0.31}, "cv_mean": 0.962,
             "cv_std": 0.011},
    "candidates": [{"name": "logistic_regression", "estimator": "LogisticRegression",
                    "best_params": {"C": 0.31}, "cv_mean": 0.962, "cv_std": 0.011,
                    "trials": 2},
                   {"name": "gbm", "estimator": "GradientBoostingClassifier",
                    "best_params": {"max_depth": 2}, "cv_mean": 0.95, "cv_std": 0.02,
                    "trials": 1}],
    "trials": [{"number": i, "candidate": "gbm", "params": {"max_depth": i},
                "cv_mean": 0.9 + i / 100, "cv_std": 0.01, "state": "complete",
                "seconds": 0.4} for i in range(3)],
}
VERDICT = {  # Contract B: rejected against a champion
    "passed": False, "reason": "test_f1 0.9512 does not beat the champion's 0.9600",
    "checks": [{"metric": "test_f1", "value": 0.9512, "rule": ">= 0.9", "passed": True}],
    "champion": {"name": "bc", "version": "3", "alias": "production",
                 "metrics": {"test_f1": 0.96, "test_accuracy": 0.97}},
    "comparison": [{"metric": "test_f1", "candidate": 0.9512, "champion": 0.96,
                    "delta": -0.0088, "min_delta": 0.0, "lower_is_better": False,
                    "passed": False}],
}
METRICS = {"test_f1": 0.9512, "train_f1": 0.98, "cv_f1": 0.962, "cv_f1_std": 0.011,
           "test_pr_auc": 0.99}
DATA = {"rows": 569, "columns": 32, "features": {"radius": "numeric", "<b>odd</b>": "numeric"},
        "classes": {"B": 357, "M": 212}, "missing": {"radius": 3}, "warnings": []}


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id":
                self.ids.append(value)
            if name in ("src", "href"):
                self.urls.append(value)


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(
        pipeline="breast_cancer", run_id="r1", metrics=METRICS,
        images={"confusion matrix (test)": PNG, "threshold curve (train folds)": PNG},
        verdict=VERDICT, facts={"model": "LogisticRegression"}, data=DATA,
        spec_yaml="name: breast_cancer\nmodel: {estimator: '<script>'}\n", search=SEARCH,
        search_history=PNG, threshold={"threshold": 0.36, "tuned": True, "metric": "f1",
                                       "cv": 5, "score": 0.97, "default_score": 0.96,
                                       "positive": "M"},
        created="2026-11-30T12:00:00+00:00")


def test_every_section_is_there(page: str) -> None:
    parsed = Page(page)
    for section in ("metrics", "gate", "threshold", "plots", "search", "data", "spec"):
        assert section in parsed.ids, section
    assert '<span class="verdict rejected">REJECTED</span>' in page
    assert "does not beat the champion" in page  # the reason in the header
    assert "bc version 3" in page and "-0.0088" in page  # the champion's comparison
    assert "0.9620 ± 0.0110" in page  # CV mean ± std beside test and train
    assert "GradientBoostingClassifier" in page and "optuna" in page  # the search
    assert "569" in page and "357" in page  # the data summary


def test_images_are_embedded_and_nothing_is_fetched(page: str) -> None:
    parsed = Page(page)
    images = [u for u in parsed.urls if u.startswith("data:image/png;base64,")]
    # two plots (the threshold curve sits in its own section) and the search history
    assert len(images) == 3
    for uri in images:
        assert base64.b64decode(uri.split(",", 1)[1]).startswith(b"\x89PNG")
    others = [u for u in parsed.urls if not u.startswith(("data:", "#"))]
    assert others == []
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert "http://" not in page and "https://" not in page and "url(" not in page


def test_values_from_the_spec_and_data_are_escaped(page: str) -> None:
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>odd</b>" not in page and "&lt;b&gt;odd&lt;/b&gt;" in page


def test_a_passing_run_without_search_or_champion() -> None:
    text = render_report(pipeline="p", run_id="r2", metrics={"test_accuracy": 0.9},
                         verdict={"passed": True, "checks": [], "reason": ""})
    parsed = Page(text)
    assert '<span class="verdict passed">PASSED</span>' in text
    assert "search" not in parsed.ids and "threshold" not in parsed.ids
    no_gate = render_report(pipeline="p", run_id="r3", metrics={"test_accuracy": 0.9})
    assert "NO GATE" in no_gate


def test_metric_rows_pair_the_splits() -> None:
    assert metric_rows({"test_f1": 0.9, "train_f1": 1.0, "cv_f1": 0.88, "cv_f1_std": 0.02,
                        "test_roc_auc": 0.95}) == [
        {"metric": "f1", "test": 0.9, "train": 1.0, "cv": 0.88, "cv_std": 0.02},
        {"metric": "roc_auc", "test": 0.95, "train": None, "cv": None, "cv_std": None}]


def test_the_spec_keeps_a_multi_line_description_as_written() -> None:
    """A ``description: |`` block was shown single-quoted, wrapped, with blank lines between
    its lines and ``scikit-learn''s`` for an apostrophe."""
    from conveyor.modeling.report import spec_as_yaml

    text = spec_as_yaml({"name": "diabetes",
                         "description": "Predict disease progression\n"
                                        "(scikit-learn's bundled copy).\n",
                         "tags": ["example"]})
    assert text == ("name: diabetes\ndescription: |\n  Predict disease progression\n"
                    "  (scikit-learn's bundled copy).\ntags:\n- example\n")
    import yaml

    assert yaml.safe_load(text)["description"].endswith("bundled copy).\n")  # still YAML


def test_a_regression_shows_its_target_range_not_classes() -> None:
    """The regression report's data summary said "classes —"."""
    data = {"rows": 442, "columns": 11, "features": {"bmi": "numeric"}, "classes": {},
            "missing": {}, "task": "regression",
            "schema": {"columns": {"bmi": {"kind": "numeric", "min": 18.0, "max": 42.2},
                                   "target": {"kind": "numeric", "min": 25.0, "max": 346.0}}}}
    text = render_report(pipeline="diabetes", run_id="r", metrics={"test_rmse": 58.5},
                         data=data, target="target")
    assert "<tr><th>target</th><td>target: 25 to 346</td></tr>" in text
    assert "<th>classes</th>" not in text


def test_the_champions_scores_say_which_rows_they_are_on(page: str) -> None:
    # the gate scores the champion on this run's test rows; "recorded scores" read as the
    # metrics logged when the champion was trained, on another split
    assert "the champion's scores on this run's test rows" in page.replace("&#x27;", "'")
    assert "recorded scores" not in page
