"""Read deploy/'s Dockerfiles the way ``docker build`` would, for tests that have no engine.

A :class:`Stage` is one ``FROM`` with its instructions; :func:`stages` splits a Dockerfile
into them (continuation lines joined, comments dropped). The last stage is the image. Its
``ENV`` (with ``ARG`` and earlier ``ENV`` substituted, as the builder does), ``USER``,
``ENTRYPOINT``/``CMD`` and ``HEALTHCHECK`` are what a container starts with, so a test can
run the same command on this machine with the same environment.

>>> image = stages("FROM python:3.11-slim AS run\\nARG UID=7\\nENV A=1 \\\\\\n  B=$A/x\\n"
...                'USER ${UID}\\nENTRYPOINT ["sh", "-c", "echo $B"]\\n')[-1]
>>> image.name, image.env(), image.user(), image.command()
('run', {'A': '1', 'B': '1/x'}, '7', ['sh', '-c', 'echo $B'])
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Stage", "expand", "stages"]

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand(text: str, values: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced from ``values`` (unknown names become empty)."""
    return _VAR.sub(lambda m: values.get(m.group(1) or m.group(2), ""), text)


@dataclass
class Stage:
    """One build stage: ``FROM base [AS name]`` and its instructions, in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """The arguments of every ``keyword`` instruction, in order."""
        return [args for key, args in self.instructions if key == keyword.upper()]

    def _values(self, upto: int | None = None, inherited: dict[str, str] | None = None,
                ) -> tuple[dict[str, str], dict[str, str]]:
        args: dict[str, str] = {}
        env: dict[str, str] = dict(inherited or {})
        for key, text in self.instructions[:upto]:
            if key == "ARG":
                name, _, default = text.partition("=")
                args[name.strip()] = default.strip()
            elif key == "ENV":
                words = shlex.split(text)
                pairs = ([(words[0], " ".join(words[1:]))] if words and "=" not in words[0]
                         else [tuple(w.split("=", 1)) for w in words])
                for name, value in pairs:
                    env[name] = expand(value, {**args, **env})
        return args, env

    def env(self, inherited: dict[str, str] | None = None) -> dict[str, str]:
        """The environment the image's containers start with: ``inherited`` (the base
        image's, e.g. its ``PATH``) overlaid with this stage's ``ENV``."""
        return self._values(None, inherited)[1]

    def user(self) -> str | None:
        """The last ``USER``, with build arguments substituted."""
        for index in range(len(self.instructions) - 1, -1, -1):
            key, text = self.instructions[index]
            if key == "USER":
                args, env = self._values(index)
                return expand(text.strip(), {**args, **env})
        return None

    def _exec_form(self, keyword: str) -> list[str] | None:
        found = self.all(keyword)
        if not found:
            return None
        value = json.loads(found[-1])  # the exec (JSON) form; hadolint insists on it
        assert isinstance(value, list), f"{keyword} is not in exec form: {found[-1]}"
        return [str(v) for v in value]

    def command(self) -> list[str]:
        """``ENTRYPOINT`` followed by ``CMD``: the argv a container's first process gets."""
        return (self._exec_form("ENTRYPOINT") or []) + (self._exec_form("CMD") or [])

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """``HEALTHCHECK`` options (``--interval`` ...) and its ``CMD`` in exec form."""
        found = self.all("HEALTHCHECK")
        assert found, "no HEALTHCHECK"
        options_text, _, command = found[-1].partition("CMD ")
        options = dict(word.lstrip("-").split("=", 1) for word in shlex.split(options_text))
        return options, [str(v) for v in json.loads(command)]


def stages(text: str) -> list[Stage]:
    """The build stages of Dockerfile ``text`` (a path's text, or the text itself)."""
    if "\n" not in text and Path(text).is_file():
        text = Path(text).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found: list[Stage] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append(Stage(base=words[0], name=name))
        elif found:
            found[-1].instructions.append((keyword, args.strip()))
    return found
