"""GitHub Actions runner plumbing: step outputs, job summary, workflow commands, event payload.

Everything here writes to files or stdout exactly as the runner documents it:

* outputs go to ``$GITHUB_OUTPUT`` as ``name<<DELIM`` heredocs with a random delimiter that
  does not occur in the value (so a value can never inject another output);
* the job summary is appended to ``$GITHUB_STEP_SUMMARY``, whose limit is 1 MiB per step;
  longer Markdown is cut at a line boundary (see :func:`cut_markdown`);
* ``::add-mask::``, ``::warning::``, ``::error::`` and ``::notice::`` are printed on stdout with
  the runner's escaping of data (``%``, CR, LF) and properties (also ``:`` and ``,``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from diffrisk.errors import GitHubError

#: GitHub's limit for the job summary of one step (bytes).
SUMMARY_LIMIT = 1024 * 1024


def in_actions(env: Mapping[str, str] | None = None) -> bool:
    """True when running inside a GitHub Actions job."""
    env = os.environ if env is None else env
    return env.get("GITHUB_ACTIONS") == "true"


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, stream: TextIO | None = None, **props: Any) -> None:
    """Print a workflow command ``::name k=v,...::message`` (values escaped; None skipped)."""
    stream = sys.stdout if stream is None else stream
    shown = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items() if v is not None)
    stream.write(f"::{name}{' ' + shown if shown else ''}::{escape_data(message)}\n")
    stream.flush()


def add_mask(secret: str, stream: TextIO | None = None) -> None:
    """Ask the runner to mask ``secret`` in all later log lines (each line of it)."""
    for line in secret.splitlines() or [secret]:
        if line.strip():
            command("add-mask", line, stream)


def annotate(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    end_line: int | None = None,
    title: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """An annotation shown on the run (and on the diff when ``file`` is in it).

    ``level`` is ``notice``, ``warning`` or ``error``.
    """
    if level not in ("notice", "warning", "error"):
        raise ValueError(f"unknown annotation level {level!r}")
    command(level, message, stream, file=file, line=line, endLine=end_line, title=title)


def _delimiter(value: str) -> str:
    while True:
        delim = f"ghadelimiter_{uuid.uuid4()}"
        if delim not in value:
            return delim


def format_output(name: str, value: str) -> str:
    """One output in the heredoc form the runner reads from ``$GITHUB_OUTPUT``."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
        raise ValueError(f"invalid output name {name!r}")
    delim = _delimiter(value)
    return f"{name}<<{delim}\n{value}\n{delim}\n"


def set_outputs(values: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> bool:
    """Append step outputs to ``path`` (default ``$GITHUB_OUTPUT``). False when there is none."""
    target = path if path is not None else os.environ.get("GITHUB_OUTPUT")
    if not target:
        return False
    text = "".join(format_output(k, "" if v is None else str(v)) for k, v in values.items())
    try:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as err:
        raise GitHubError(
            f"cannot write step outputs to {target}: {err.strerror}",
            hint="GITHUB_OUTPUT must name a writable file (the runner sets it)",
        ) from None
    return True


_OPEN = re.compile(r"<details\b", re.IGNORECASE)
_CLOSE = re.compile(r"</details\s*>", re.IGNORECASE)


def cut_markdown(text: str, limit: int, pointer: str, *, unit: str = "chars") -> str:
    """Cut ``text`` to at most ``limit`` characters (or UTF-8 bytes with ``unit="bytes"``).

    The cut is at a line boundary, outside any code fence; open ``<details>`` elements are
    closed and ``pointer`` (a line saying where the rest is) is appended. Text that fits is
    returned unchanged.
    """

    def size(s: str) -> int:
        return len(s.encode("utf-8")) if unit == "bytes" else len(s)

    if size(text) <= limit:
        return text
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    used = 0
    depth = 0
    fence = False
    best: tuple[int, int] = (0, 0)  # (lines kept, details depth) at the last safe cut
    for line in lines:
        # Reserve room for closing tags and the pointer at the current depth.
        need = size(line)
        if used + need + size(_tail(depth + 1, pointer)) > limit:
            break
        kept.append(line)
        used += need
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        if not fence:
            depth += len(_OPEN.findall(line)) - len(_CLOSE.findall(line))
            depth = max(depth, 0)
            best = (len(kept), depth)
    n, depth = best
    head = "".join(kept[:n])
    if head and not head.endswith("\n"):
        head += "\n"
    out = head + _tail(depth, pointer)
    while size(out) > limit and n > 0:  # only when a single tail is bigger than expected
        n -= 1
        head = "".join(kept[:n])
        out = head + _tail(depth, pointer)
    return out


def _tail(depth: int, pointer: str) -> str:
    return "\n" + "</details>\n\n" * depth + pointer.rstrip("\n") + "\n"


def append_summary(
    markdown: str,
    path: str | os.PathLike[str] | None = None,
    *,
    limit: int = SUMMARY_LIMIT,
) -> bool:
    """Append Markdown to the job summary (default ``$GITHUB_STEP_SUMMARY``).

    What other commands of the step already wrote counts against the 1 MiB limit; what
    does not fit is cut cleanly. False when there is no summary file.
    """
    target = path if path is not None else os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    try:
        used = Path(target).stat().st_size
    except OSError:
        used = 0
    room = max(limit - used, 0)
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    pointer = "_The diffrisk summary was cut at GitHub's 1 MiB job summary limit; the JSON report has everything._"
    text = cut_markdown(text, room, pointer, unit="bytes")
    if len(text.encode("utf-8")) > room:
        return False
    try:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as err:
        raise GitHubError(
            f"cannot write the job summary to {target}: {err.strerror}",
            hint="GITHUB_STEP_SUMMARY must name a writable file (the runner sets it)",
        ) from None
    return True


def read_event(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The webhook payload of the triggering event (``$GITHUB_EVENT_PATH``); {} without one."""
    target = path if path is not None else os.environ.get("GITHUB_EVENT_PATH")
    if not target:
        return {}
    try:
        with open(target, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise GitHubError(
            f"the event payload {target} does not exist",
            hint="GITHUB_EVENT_PATH is set by the runner; unset it when running outside Actions",
        ) from None
    except ValueError as err:
        raise GitHubError(f"the event payload {target} is not JSON ({err})") from None
    except OSError as err:
        raise GitHubError(f"cannot read the event payload {target}: {err.strerror}") from None
    if not isinstance(data, dict):
        raise GitHubError(f"the event payload {target} is not a JSON object")
    return data
