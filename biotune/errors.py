"""biotune's exception hierarchy.

Every user-facing error names the place (file:line, or a config key) and the fix. The CLI turns a
:class:`BiotuneError` into a message on stderr and a non-zero exit code (see ``EXIT_CODES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Exit codes of the ``biotune`` command, documented in the README.
EXIT_OK = 0
EXIT_ERROR = 2  # bad input: config, data, checkpoint, launch
EXIT_PREEMPTED = 75  # SIGUSR1/SIGTERM: a checkpoint was saved, requeue and resume (EX_TEMPFAIL)


#: The most characters of a value read from the user's files or command line that a message echoes.
MAX_SHOWN = 60
#: The most characters of one part of a message (a problem, a fix, a config key): the backstop for a value that
#: a third-party error message (OmegaConf, pyarrow) echoes before :func:`shown` could cut it.
MAX_PART = 1000


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``value`` as text to echo in a message, cut to about ``limit`` characters.

    A value longer than ``limit`` keeps its first two thirds, then ``...`` and its full length
    (``'xxxxxxxx...(10485760 characters)'``), so a 10 MB id from a predictions file gives a one-line message.
    Every message that echoes a name, id or value the user supplied goes through this helper.
    """
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[: max(1, 2 * limit // 3)]}...({len(text)} characters)"


class BiotuneError(Exception):
    """Base class of every error biotune raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem in a config: the dotted key, what is wrong, and how to fix it."""

    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        key, problem, fix = (shown(part, MAX_PART) for part in (self.key, self.problem, self.fix))
        return f"  {key}: {problem}\n    fix: {fix}"


class ConfigError(BiotuneError):
    """A config has one or more problems; all of them are listed at once."""

    def __init__(self, problems: list[Problem], source: str | Path | None = None) -> None:
        self.problems = list(problems)
        self.source = str(source) if source else None
        where = f" in {self.source}" if self.source else ""
        n = len(self.problems)
        lines = [f"{n} config problem{'s' if n != 1 else ''}{where}:"]
        lines += [str(p) for p in self.problems]
        super().__init__("\n".join(lines))


class DataError(BiotuneError):
    """A data file is missing or malformed. Names the file (and line) and the fix."""

    def __init__(self, path: str | Path, message: str, fix: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.fix = fix
        where = f"{shown(self.path, MAX_PART)}:{line}" if line is not None else shown(self.path, MAX_PART)
        super().__init__(f"{where}: {shown(message, MAX_PART)}\n  fix: {shown(fix, MAX_PART)}")


class LaunchError(BiotuneError):
    """The distributed environment or the launcher is misconfigured."""


class CheckpointError(BiotuneError):
    """A checkpoint cannot be saved, found, or resumed from."""
