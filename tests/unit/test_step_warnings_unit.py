"""Steps that record warnings in two threads at once (two pipelines through the public API).

With ``warnings.catch_warnings`` per step, the step that left second restored the state the
first one had installed: every later warning of the process went into a finished step's list
and was never shown again.
"""

from __future__ import annotations

import threading
import warnings

from conveyor.steps.base import recording_warnings


def _interleaved() -> dict[str, list[str]]:
    """a enters, b enters, a leaves, b leaves; each warns in its own thread meanwhile."""
    b_in, a_out = threading.Event(), threading.Event()
    got: dict[str, list[str]] = {}

    def a() -> None:
        with recording_warnings() as caught:
            warnings.warn("from a", UserWarning, stacklevel=1)
            assert b_in.wait(10)
            warnings.warn("from a again", UserWarning, stacklevel=1)
        got["a"] = [str(w.message) for w in caught]
        a_out.set()

    def b() -> None:
        with recording_warnings() as caught:
            b_in.set()
            warnings.warn("from b", RuntimeWarning, stacklevel=1)
            assert a_out.wait(10)
            warnings.warn("from b after a left", RuntimeWarning, stacklevel=1)
        got["b"] = [str(w.message) for w in caught]

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return got


def test_each_thread_records_its_own_and_the_process_is_left_as_it_was() -> None:
    filters, shown = list(warnings.filters), warnings.showwarning
    got = _interleaved()
    assert got == {"a": ["from a", "from a again"], "b": ["from b", "from b after a left"]}
    assert warnings.filters == filters
    assert warnings.showwarning is shown
    # a warning after both steps is shown again, not swallowed by a finished recorder
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        warnings.warn("after both", UserWarning, stacklevel=1)
    assert [str(w.message) for w in later] == ["after both"]


def test_a_thread_the_only_recording_step_started_is_recorded_into_it() -> None:
    # Optuna's parallel trials warn in threads of the train step's pool
    def trial() -> None:
        warnings.warn("from a trial thread", UserWarning, stacklevel=1)

    with recording_warnings() as caught:
        worker = threading.Thread(target=trial)
        worker.start()
        worker.join(10)
    assert [str(w.message) for w in caught] == ["from a trial thread"]


def test_ignore_filters_set_before_still_apply() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        with recording_warnings() as caught:
            warnings.warn("dropped", FutureWarning, stacklevel=1)
            warnings.warn("kept", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["kept"]
