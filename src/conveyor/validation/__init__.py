"""Data validation building blocks: the pandera schema of a spec, problems found in a table,
the saved schema a pipeline's later runs are compared with, and the HTML report.

The validate step (``conveyor.steps.validate``) applies them with the spec's policies. Heavy
libraries (pandas, pandera) are imported inside functions.
"""

from __future__ import annotations

from conveyor.validation.baseline import compare_schema, infer_schema
from conveyor.validation.problems import Problem, RowNamer
from conveyor.validation.report import render_html
from conveyor.validation.rules import row_problems

__all__ = ["Problem", "RowNamer", "compare_schema", "infer_schema", "render_html",
           "row_problems"]
