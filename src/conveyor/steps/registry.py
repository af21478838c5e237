"""The steps a pipeline runs: found through entry points, chosen by the spec, ordered by
their declared inputs.

Every step, Conveyor's own included, is registered in the entry-point group
``conveyor.steps`` under its name (pyproject.toml); a distribution adds one without editing
Conveyor (docs/steps.md). The spec chooses: an explicit ``steps:`` list, or else every
built-in step (``default``) and every other step whose section is written. The order is
derived from the inputs (``"<step>.<artifact>"``) and ``after``, ties broken by name.
"""

from __future__ import annotations

import difflib
import heapq
from typing import TYPE_CHECKING

from conveyor.errors import PluginError, SpecError
from conveyor.spec.plugins import STEP_GROUP, find_plugins, load_plugin
from conveyor.steps.base import BaseStep

if TYPE_CHECKING:
    from conveyor.spec import LoadedSpec, Spec

__all__ = ["default_step_names", "pipeline_steps", "registered_steps", "step_class"]


def step_class(name: str) -> type[BaseStep] | None:
    """The step registered as ``name`` (imported on first use), or ``None``.

    Raises:
        PluginError: its entry point fails to import or is not a step named ``name``.
    """
    found = load_plugin(STEP_GROUP, name)
    if found is None:
        return None
    if not (isinstance(found, type) and issubclass(found, BaseStep)):
        raise PluginError(f"entry point {name!r} (group {STEP_GROUP}) names {found!r}, not a "
                          "subclass of conveyor.steps.BaseStep")
    if getattr(found, "name", None) != name:
        raise PluginError(f"entry point {name!r} (group {STEP_GROUP}) names a step called "
                          f"{getattr(found, 'name', None)!r}; the two names must match")
    return found


def registered_steps() -> dict[str, type[BaseStep]]:
    """Every registered step by name.

    Raises:
        PluginError: an entry point fails to import, or none is registered (Conveyor is not
            installed: ``pip install -e .`` writes the entry points).
    """
    names = sorted(find_plugins(STEP_GROUP))
    if not names:
        raise PluginError(f"no step is registered in the entry-point group {STEP_GROUP}; "
                          "install Conveyor (pip install -e . or bash scripts/setup.sh)")
    return {name: step for name in names if (step := step_class(name)) is not None}


def default_step_names() -> tuple[str, ...]:
    """The steps of a spec that names no plug-in step and has no ``steps:`` list, in order."""
    steps = registered_steps()
    return tuple(step.name for step in _ordered([s for s in steps.values() if s.default]))


def _ordered(chosen: list[type[BaseStep]]) -> list[type[BaseStep]]:
    """A topological order of ``chosen`` (inputs and ``after`` first), ties by name."""
    names = {step.name for step in chosen}
    needs = {step.name: {n.split(".", 1)[0] for n in step.inputs} | set(step.after)
             for step in chosen}
    needs = {name: {n for n in wanted if n in names and n != name}
             for name, wanted in needs.items()}
    by_name = {step.name: step for step in chosen}
    ready = [name for name, wanted in needs.items() if not wanted]
    heapq.heapify(ready)
    order: list[type[BaseStep]] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(by_name[name])
        for other, wanted in needs.items():
            if name in wanted:
                wanted.discard(name)
                if not wanted:
                    heapq.heappush(ready, other)
    if len(order) != len(chosen):
        stuck = sorted(names - {step.name for step in order})
        raise PluginError(f"steps {', '.join(stuck)} depend on each other in a cycle")
    return order


def pipeline_steps(spec: Spec | LoadedSpec | None = None) -> list[BaseStep]:
    """The steps ``spec`` runs, every one after its upstream steps.

    Without a spec: the default pipeline (the built-in steps).

    Raises:
        SpecError: ``steps:`` names an unknown step, or a chosen step needs a step that is
            not chosen (naming the key, and with a loaded spec its file and line).
        PluginError: a registered step cannot be imported.
    """
    loaded = spec if spec is not None and hasattr(spec, "base_dir") else None
    model: Spec | None = loaded.spec if loaded is not None else spec  # type: ignore[union-attr]

    def error(key: str, message: str) -> SpecError:
        return loaded.error(key, message) if loaded is not None else SpecError(message,
                                                                               key=key)

    steps = registered_steps()
    if model is None:
        chosen = [s for s in steps.values() if s.default]
    elif model.steps is not None:
        chosen = []
        for index, name in enumerate(model.steps):
            if name not in steps:
                close = difflib.get_close_matches(name, list(steps), n=1)
                hint = f"did you mean {close[0]!r}?" if close else (
                    f"registered steps: {', '.join(steps)}")
                raise error(f"steps.{index}", f"unknown step {name!r}; {hint}")
            if steps[name] not in chosen:
                chosen.append(steps[name])
    else:
        present = model.present()
        chosen = [s for s in steps.values() if s.default or s.section_key() in present]
    names = {step.name for step in chosen}
    for step in chosen:
        for wanted in step.inputs:
            producer = wanted.split(".", 1)[0]
            if producer in names:
                continue
            if model is not None and model.steps is not None:
                raise error("steps", f"step {step.name!r} needs {wanted}, but step "
                            f"{producer!r} is not in steps; add it, or remove {step.name!r}")
            maker = steps.get(producer)
            where = maker.section_key() if maker is not None else step.section_key()
            raise error(where, f"step {step.name!r} needs {wanted}, but step {producer!r} "
                        + (f"does not run; add a {where}: section" if maker is not None
                           else "is not registered; install the plug-in that provides it"))
    return [step() for step in _ordered(chosen)]
