"""One writing run at a time per data directory.

The commands that write into ``DATA_DIR`` (``mine``, ``label``, ``train``, ``run``,
``score`` and the merge ``gate`` when they log the prediction, ``monitor --retrain``,
``models promote`` and ``rollback``) hold an exclusive lock on ``DATA_DIR/.diffrisk.lock``
(:mod:`filelock`: ``flock`` on POSIX, released by the kernel when the process dies,
even by SIGKILL) until they end. A second such run waits up to ``DIFFRISK_LOCK_WAIT``
seconds (default :data:`DEFAULT_WAIT`), saying whom it waits for, then fails with
:class:`~diffrisk.errors.DataDirLockedError`. Read-only commands take no lock.

The holder writes its pid and command to ``.diffrisk.lock.owner`` (JSON) for those
messages, and removes it when done. Both files are hidden, outside ``models/``, and
never read as data. When the lock file cannot be made (a read-only data directory,
which no one can write to), the command runs without the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from diffrisk.errors import ConfigError, DataDirLockedError

LOCK_FILE = ".diffrisk.lock"
OWNER_FILE = ".diffrisk.lock.owner"
#: Seconds a run waits for another one on the same data directory.
DEFAULT_WAIT = 60.0
WAIT_ENV = "DIFFRISK_LOCK_WAIT"

_held: dict[str, int] = {}  # lock files this process holds -> nesting depth


def wait_seconds() -> float:
    """``DIFFRISK_LOCK_WAIT`` (seconds, 0 = do not wait), else :data:`DEFAULT_WAIT`."""
    raw = os.environ.get(WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_WAIT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ConfigError(
            f"{WAIT_ENV}={raw!r} is not a number of seconds", hint=f"e.g. {WAIT_ENV}=600"
        )
    return value


def owner(data_dir: str | Path) -> dict[str, Any] | None:
    """What the holder wrote about itself (pid, command, host, since), if readable."""
    try:
        d = json.loads((Path(data_dir) / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def describe(info: dict[str, Any] | None) -> str:
    if not info or not isinstance(info.get("pid"), int):
        return "pid unknown"
    out = f"pid {info['pid']}"
    if info.get("host") and info["host"] != socket.gethostname():
        out += f" on {info['host']}"
    if info.get("command"):
        out += f", `{info['command']}`"
    if info.get("since"):
        out += f", since {info['since']}"
    return out


def _write_owner(data_dir: Path, command: str) -> None:
    info = {
        "pid": os.getpid(),
        "command": command,
        "host": socket.gethostname(),
        "since": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):  # only for messages: never fails the run
        fd, tmp = tempfile.mkstemp(prefix=f"{OWNER_FILE}.", suffix=".tmp", dir=data_dir)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
            os.replace(tmp, data_dir / OWNER_FILE)
        except OSError:
            os.unlink(tmp)
            raise


@contextlib.contextmanager
def data_dir_lock(
    data_dir: str | Path,
    *,
    command: str = "diffrisk",
    create: bool = False,
    repo: str | Path | None = None,
    wait: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[bool]:
    """Hold the data directory's lock; yields whether it is held.

    ``create``: make the data directory when it does not exist (else there is nothing
    to lock: the command will say what is missing); with ``repo``, only once ``repo``
    opens as a repository (else its error, and nothing made). ``wait``: seconds to wait for
    another run (default :func:`wait_seconds`); ``on_wait`` is told once that this run
    waits, and for whom. Nested use in one process holds the one lock.
    """
    from filelock import FileLock

    data = Path(data_dir)
    if not data.is_dir():
        if not create:
            yield False
            return
        if repo is not None:
            from diffrisk.git.repo import open_repo

            open_repo(repo)
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError:
            yield False  # the command reports why it cannot write there
            return
    path = data / LOCK_FILE
    key = os.path.realpath(path)
    if key in _held:
        _held[key] += 1
        try:
            yield True
        finally:
            _held[key] -= 1
        return
    wait = wait_seconds() if wait is None else wait
    lock = FileLock(str(path))
    if not _acquire(lock, data, wait, on_wait):
        yield False  # a read-only directory, or a lock file we may not open
        return
    _held[key] = 1
    try:
        _write_owner(data, command)
        yield True
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            (data / OWNER_FILE).unlink()
        lock.release()


def _acquire(lock: Any, data: Path, wait: float, on_wait: Callable[[str], None] | None) -> bool:
    from filelock import Timeout

    try:
        try:
            lock.acquire(timeout=0)
            return True
        except Timeout:
            if wait <= 0:
                raise
        if on_wait is not None:
            on_wait(
                f"waiting for another diffrisk run on {data} ({describe(owner(data))}), "
                f"up to {wait:g} s ..."
            )
        t0 = time.monotonic()
        lock.acquire(timeout=wait, poll_interval=0.2)
    except Timeout:  # a TimeoutError, so an OSError: first
        info = owner(data)
        raise DataDirLockedError(
            f"another diffrisk run ({describe(info)}) is using {data}"
            + (f"; gave up after waiting {wait:g} s" if wait > 0 else ""),
            hint=_hint(info),
        ) from None
    except OSError:
        return False
    if on_wait is not None:
        on_wait(f"the other run is done: going on after {time.monotonic() - t0:.1f} s")
    return True


def _hint(info: dict[str, Any] | None) -> str:
    stop = f" (or stop it: kill {info['pid']})" if info and isinstance(info.get("pid"), int) else ""
    return (
        f"wait for it to finish{stop} and run again; {WAIT_ENV}=SECONDS waits longer, "
        "and another --data-dir does not share its data"
    )
