"""One error hierarchy for diffrisk.

Library code raises these; only the CLI layer (``diffrisk.cli``) turns them into a
one-line message, a hint and an exit code. Never raise bare ``Exception``.
"""

from __future__ import annotations


class DiffriskError(Exception):
    """Base class: ``message`` says what went wrong, ``hint`` how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class ConfigError(DiffriskError):
    """Invalid configuration file or option value."""


class RepositoryError(DiffriskError):
    """The repository cannot be mined as asked (not a repo, empty, shallow, bad rev)."""


class NotAGitRepositoryError(RepositoryError):
    pass


class NothingToScoreError(RepositoryError):
    """The range holds nothing to score: no commit that is not in the base, or no file
    changed (an empty commit). The gates pass such a range."""


class EmptyRepositoryError(RepositoryError):
    pass


class ShallowCloneError(RepositoryError):
    pass


class GitCommandError(RepositoryError):
    """A git subprocess failed in a way we do not recover from."""


class DataError(DiffriskError):
    """The data directory is missing, corrupt or from an incompatible version."""


class DataDirLockedError(DataError):
    """Another diffrisk run holds the data directory's lock (:mod:`diffrisk.data.lock`)."""


class ModelError(DiffriskError):
    """A model file is missing, corrupt, tampered with or incompatible."""


class GitHubError(DiffriskError):
    """The GitHub API refused or failed a request we cannot do without."""


class GateFailure(DiffriskError):
    """Raised by gates when a change is blocked; exit code 1 (a decision, not a crash)."""

    exit_code = 1


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM (``kill``, a cancelled CI job).

    A ``KeyboardInterrupt``, not a :class:`DiffriskError`, so that ``except Exception``
    never swallows it. ``message`` (may be empty) says what the run kept; the CLI prints
    it with ``hint`` and exits with 128 + the signal number (130, 143).
    """

    def __init__(self, message: str = "", hint: str | None = None, signum: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_number(err: BaseException) -> int:
    """The signal behind an interruption: SIGTERM for :class:`Interrupted` raised by the
    CLI's SIGTERM handler, else SIGINT (2, a plain ``KeyboardInterrupt``)."""
    return getattr(err, "signum", 2)


class TooLittleHistoryError(DataError):
    """The labelled history cannot train a model yet (one class, too few changes);
    ``diffrisk train`` then leaves scoring to the bundled model."""
