"""What a Dask worker runs: one coarse task per repository and stage.

* ``fetch``: clone a URL into ``ROOT/<owner>/<name>/repo.git`` (bare), or fetch what is
  new into an earlier clone; a local path is only checked to be a git repository.
* ``mine``: :func:`diffrisk.mining.mine.mine` into ``ROOT/<owner>/<name>/data`` (the data
  directory a single-repository run writes; incremental: only new commits are mined).
* ``label``: :func:`diffrisk.labelling.label.label` on that data directory.

Each task holds the data directory's lock (:mod:`diffrisk.data.lock`, released by the
kernel when a worker dies, even by SIGKILL), removes the temporary files a killed
attempt may have left (every file is written to a hidden temporary name and renamed into
place, so nothing else can be half-written), runs the stage with one process (the
cluster's workers are the parallelism), rewrites the repository's partition of the
combined dataset (:mod:`diffrisk.org.dataset`) and returns a :class:`StageOutcome`.

A :class:`~diffrisk.errors.DiffriskError` (not a git repository, a bad revision, a
corrupt dataset) is the repository's failure, returned with its reason: running it again
would fail again. Any other exception propagates, and Dask runs the task again
(``retries``); a worker that dies mid-task has its task run again on another worker
(the scheduler's ``allowed-failures``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import resource
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from diffrisk.errors import DiffriskError, GitCommandError
from diffrisk.org.manifest import RepoSpec

STAGES = ("fetch", "mine", "label")
CLONE_DIR = "repo.git"
DATA_DIR = "data"
STATUS_FILE = "status.json"


@dataclass(frozen=True)
class RepoLayout:
    """Where one repository's results live under the root."""

    root: Path
    name: str

    @property
    def dir(self) -> Path:
        owner, short = self.name.split("/")
        return self.root / owner / short

    @property
    def data(self) -> Path:
        return self.dir / DATA_DIR

    @property
    def clone(self) -> Path:
        return self.dir / CLONE_DIR

    @property
    def status(self) -> Path:
        return self.dir / STATUS_FILE


def read_status(root: Path, name: str) -> dict[str, Any]:
    """The newest outcome of each stage for ``name`` (``status.json``; empty before any)."""
    import json

    try:
        d = json.loads(RepoLayout(root, name).status.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def repo_path(spec: RepoSpec, root: str | Path) -> Path:
    """The repository a task reads: the local path, or the clone under the root."""
    return Path(spec.path) if spec.path is not None else RepoLayout(Path(root), spec.name).clone


@dataclass
class StageOutcome:
    """What one task did for one repository (JSON-able through :meth:`to_dict`)."""

    name: str
    stage: str
    status: str  # ok | failed | skipped
    reason: str = ""
    hint: str | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """CPU time of the task's thread and of the processes it waited for (git): what the
    stage costs, whatever else the machine is doing."""
    started: float = 0.0
    """Wall-clock start and end (epoch seconds, the worker's clock)."""
    ended: float = 0.0
    pid: int = 0
    host: str = ""
    peak_rss_mb: float = 0.0
    """The worker process's peak resident memory so far (its whole life, not this task)."""
    children_peak_rss_mb: float = 0.0
    """The largest git (or other) child process the worker has waited for."""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageOutcome:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def run_stage(
    spec: RepoSpec, stage: str, root: str, upstream: StageOutcome | None = None
) -> StageOutcome:
    """Run ``stage`` for ``spec`` (the task function; ``upstream``: the outcome of the
    stage before it in this run, whose failure skips this one)."""
    started = time.time()
    t0 = time.perf_counter()
    c0 = _cpu()
    out = StageOutcome(spec.name, stage, "ok", started=started, pid=os.getpid())
    out.host = socket.gethostname()
    if upstream is not None and upstream.status != "ok":
        out.status = "skipped"
        out.reason = f"{upstream.stage} {upstream.status}: {upstream.reason}"
    else:
        try:
            out.details = _STAGES[stage](spec, Path(root))
        except DiffriskError as err:
            out.status = "failed"
            out.reason = err.message
            out.hint = err.hint
    out.seconds = time.perf_counter() - t0
    out.cpu_seconds = _cpu() - c0
    out.ended = time.time()
    out.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.children_peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def _cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + kids.ru_utime + kids.ru_stime


# -- the stages ---------------------------------------------------------------------------


def _fetch(spec: RepoSpec, root: Path) -> dict[str, Any]:
    from diffrisk.data.lock import data_dir_lock
    from diffrisk.git.repo import open_repo

    if spec.url is None:
        repo = open_repo(repo_path(spec, root))
        return {"action": "local", "head": repo.resolve(spec.rev)}
    lay = RepoLayout(root, spec.name)
    with data_dir_lock(lay.dir, command=f"diffrisk org fetch {spec.name}", create=True):
        for stale in lay.dir.glob(".clone-*"):  # a clone a killed attempt left half-done
            shutil.rmtree(stale, ignore_errors=True)
        env = git_env(spec)
        if (lay.clone / "HEAD").is_file():
            _git(
                [
                    "git",
                    "--git-dir",
                    str(lay.clone),
                    "fetch",
                    "--quiet",
                    "--prune",
                    "--tags",
                    "origin",
                    "+refs/heads/*:refs/heads/*",
                ],
                env,
            )
            action = "fetched"
        else:
            tmp = lay.dir / f".clone-{uuid.uuid4().hex[:8]}"
            try:
                _git(["git", "clone", "--quiet", "--bare", "--", spec.url, str(tmp)], env)
                os.replace(tmp, lay.clone)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            action = "cloned"
        repo = open_repo(lay.clone)
        return {"action": action, "head": repo.resolve(spec.rev)}


def git_env(spec: RepoSpec) -> dict[str, str]:
    """git's environment for a clone or fetch: never prompting; with a token in
    ``$token_env`` (the worker's environment), an HTTPS authorization header passed
    through the environment (not on the command line, not stored in the clone)."""
    from diffrisk.git.repo import GIT_ENV

    env = {**os.environ, **GIT_ENV}
    token = os.environ.get(spec.token_env, "")
    if token and spec.url is not None and spec.url.lower().startswith("https://"):
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    return env


def _git(argv: list[str], env: dict[str, str]) -> None:
    res = subprocess.run(argv, env=env, capture_output=True, check=False)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        raise GitCommandError(
            f"git {argv[1] if argv[1] != '--git-dir' else argv[3]} failed: "
            + (err[-1] if err else f"exit {res.returncode}"),
            hint="check the URL, the network and the token in the environment (token_env)",
        )


def repo_config(spec: RepoSpec, path: Path) -> Any:
    """The repository's diffrisk settings: the manifest's, else its own (as of ``rev``
    for a bare repository, which has no work tree to read them from)."""
    from diffrisk.config import load_config, parse_config
    from diffrisk.git.repo import open_repo

    if spec.config is not None:
        return parse_config(spec.config, f"the manifest's config for {spec.name}")
    repo = open_repo(path)
    return load_config(path, None, rev=spec.rev if repo.bare else None)


def _clean_temporaries(data: Path) -> list[str]:
    """Temporary files (``.NAME.*.tmp``) an attempt killed mid-write left; called with the
    lock held, so no other writer is at work."""
    gone = []
    for d in (data, data / "models"):
        if not d.is_dir():
            continue
        for p in d.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()
                gone.append(p.name)
    return gone


def _mine(spec: RepoSpec, root: Path) -> dict[str, Any]:
    from diffrisk.data.lock import data_dir_lock
    from diffrisk.mining.mine import mine
    from diffrisk.org.dataset import write_partition

    path = repo_path(spec, root)
    lay = RepoLayout(root, spec.name)
    cfg = repo_config(spec, path)
    mcfg = cfg.mine.model_copy(update={"workers": 1})
    with data_dir_lock(lay.data, command=f"diffrisk org mine {spec.name}", create=True, repo=path):
        cleaned = _clean_temporaries(lay.data)
        res = mine(
            path,
            lay.data,
            rev=spec.rev,
            config=mcfg,
            fixes=cfg.fixes,
            source_extensions=cfg.label.source_extensions,
            exclude_paths=cfg.label.exclude_paths,
        )
        rows = write_partition(root, spec.name, lay.data)
    d = res.to_dict()
    d.pop("data_dir", None)
    return {**d, "partition_rows": rows, "temporaries_removed": cleaned}


def _label(spec: RepoSpec, root: Path) -> dict[str, Any]:
    from diffrisk.data.lock import data_dir_lock
    from diffrisk.labelling.label import fetch_github_bugs, label
    from diffrisk.org.dataset import write_partition

    path = repo_path(spec, root)
    lay = RepoLayout(root, spec.name)
    cfg = repo_config(spec, path)
    lcfg = cfg.label.model_copy(update={"workers": 1})
    warnings = []
    bugs = None
    if spec.github_repo is not None:
        token = os.environ.get(spec.token_env, "")
        if token:
            bugs = fetch_github_bugs(spec.github_repo, token, lcfg.bug_labels)
        else:
            warnings.append(
                f"no token in ${spec.token_env}: GitHub bug labels not used (keyword rule only)"
            )
    with data_dir_lock(lay.data, command=f"diffrisk org label {spec.name}", create=False) as held:
        if not held and not lay.data.is_dir():
            raise DataMissing(spec.name)
        cleaned = _clean_temporaries(lay.data)
        res = label(path, lay.data, lcfg, github=bugs)
        rows = write_partition(root, spec.name, lay.data)
    d = res.to_dict()
    d.pop("data_dir", None)
    d["warnings"] = [*warnings, *d.get("warnings", [])]
    return {**d, "partition_rows": rows, "temporaries_removed": cleaned}


class DataMissing(DiffriskError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} has not been mined yet", hint="run `diffrisk org mine` (or `org run`) first"
        )


_STAGES = {"fetch": _fetch, "mine": _mine, "label": _label}
