"""The ``developer`` fix source: links developers wrote themselves.

Developers often name the commit that introduced a bug, and they know better than blame:

* ``This reverts commit <sha>.`` (git's own revert message): the reverted commit;
* ``Fixes: <sha> ("subject")`` trailers (the Linux kernel's and many C projects' rule);
* prose: "introduced in <sha>", "regression from <sha>", "broken by <sha>", "caused by
  commit <sha>", "since <sha>", "bug from #123" (a pull request, found by the squash-merge
  subject "... (#123)" of a mined commit).

A named commit must resolve to exactly one commit of the repository (abbreviations of at
least :data:`MIN_ABBREV` digits, as git prints them); anything else is ignored. These
links need no network and are trusted above SZZ (:mod:`diffrisk.labelling.label`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping

from diffrisk.git.repo import GitRepo
from diffrisk.labelling.sources import FixEvidence

MIN_ABBREV = 7
"""Shortest abbreviated commit id accepted (git's default abbreviation)."""

_SHA = r"[0-9a-f]{7,40}"
_REVERT = re.compile(rf"\bThis reverts commit ({_SHA})\b", re.I)
_TRAILER = re.compile(rf"^\s*Fixes:\s+(?:commit\s+)?({_SHA})\b", re.I | re.M)
# "introduced in abc1234", "regression from commit abc1234", "broken by abc1234",
# "caused by #123", "bug since abc1234", "regressed in #123"
_VERB = (
    r"(?:introduced|caused|broken|broke|regressed|regression|regressions|bug|bugs"
    r"|issue|problem|error|crash|appeared)"
)
_PROSE = re.compile(
    rf"\b{_VERB}\s+(?:was\s+|were\s+)?(?:introduced\s+)?(?:in|by|from|since|with|after)\s+"
    rf"(?:(?:the\s+)?(?:commit|changeset|revision|rev|pr|pull\s+request)\s+)?"
    rf"(#\d+|{_SHA})\b",
    re.I,
)
_SQUASH_PR = re.compile(r"\(#(\d+)\)\s*$")


def read_messages(repo: GitRepo, shas: Iterable[str] | None = None) -> dict[str, str]:
    """Full commit messages: of ``shas``, or of every commit reachable from HEAD (one
    ``git log`` either way)."""
    if shas is None:
        out = repo.run("log", "--no-color", "--format=%H%x00%B%x01", "HEAD", check=False)
    else:
        wanted = "\n".join(shas) + "\n"
        out = repo.run(
            "log",
            "--no-walk=unsorted",
            "--stdin",
            "--no-color",
            "--format=%H%x00%B%x01",
            input=wanted.encode(),
            check=False,
        )
    res: dict[str, str] = {}
    for rec in out.split(b"\x01"):
        rec = rec.lstrip(b"\n")
        if not rec:
            continue
        sha, _, body = rec.partition(b"\x00")
        res[sha.decode()] = body.decode("utf-8", "replace")
    return res


class ShaIndex:
    """Resolves abbreviated commit ids against a set of known commits."""

    def __init__(self, shas: Iterable[str]) -> None:
        self._sorted = sorted({s.lower() for s in shas})

    def resolve(self, abbrev: str) -> str | None:
        """The one known commit starting with ``abbrev``; None when none or several do."""
        a = abbrev.lower()
        if len(a) < MIN_ABBREV:
            return None
        i = bisect.bisect_left(self._sorted, a)
        if i >= len(self._sorted) or not self._sorted[i].startswith(a):
            return None
        if i + 1 < len(self._sorted) and self._sorted[i + 1].startswith(a):
            return None
        return self._sorted[i]


def pull_request_commits(subjects: Mapping[str, str]) -> dict[int, str]:
    """PR number -> the squash-merged commit titled "... (#N)"."""
    out: dict[int, str] = {}
    for sha, subject in subjects.items():
        m = _SQUASH_PR.search(subject or "")
        if m:
            out.setdefault(int(m.group(1)), sha)
    return out


def named_commits(message: str) -> list[tuple[str, str]]:
    """(kind, reference) pairs a message names as bug-introducing: kind is ``revert``,
    ``trailer`` or ``prose``; a reference is an abbreviated sha or ``#N``."""
    out: list[tuple[str, str]] = []
    for m in _REVERT.finditer(message):
        out.append(("revert", m.group(1)))
    for m in _TRAILER.finditer(message):
        out.append(("trailer", m.group(1)))
    for m in _PROSE.finditer(message):
        out.append(("prose", m.group(1)))
    return out


def developer_evidence(
    messages: Mapping[str, str],
    known: Iterable[str],
    subjects: Mapping[str, str] | None = None,
) -> list[FixEvidence]:
    """A :class:`FixEvidence` per commit whose message names, in one of the forms above,
    a commit of ``known`` (or a pull request squash-merged as one, via ``subjects``) that
    is not the commit itself."""
    index = ShaIndex(known)
    prs = pull_request_commits(subjects or {})
    out: list[FixEvidence] = []
    for sha, message in messages.items():
        named: list[str] = []
        for _kind, ref in named_commits(message):
            if ref.startswith("#"):
                target = prs.get(int(ref[1:]))
            elif ref.isdigit():  # "in 1234567 lines" is a number, not a commit
                continue
            else:
                target = index.resolve(ref)
            if target and target != sha and target not in named:
                named.append(target)
        if named:
            out.append(FixEvidence(sha, "developer", inducing=tuple(named)))
    return out
