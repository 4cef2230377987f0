"""What a Dask worker runs: one coarse task per repository and stage.

* ``fetch``: clone a URL into ``ROOT/<owner>/<name>/repo.git`` (bare; renamed into place
  once whole), or fetch what is new from the manifest's URL into an earlier clone; a
  local path is only checked to be a git repository. A token travels as an HTTPS header
  through git's environment (:func:`git_env`); a git that stalls is stopped; a failure
  says why (:func:`_git_failure`).
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
from urllib.parse import urlsplit

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
        if lay.clone.exists() and not (lay.clone / "HEAD").is_file():
            # not a clone (repo.git only ever appears whole, renamed into place): start over
            shutil.rmtree(lay.clone)
        if (lay.clone / "HEAD").is_file():
            git_dir = ["git", "--git-dir", str(lay.clone)]
            # from the manifest's URL (the repository may have moved since the clone),
            # which the clone's origin is kept pointing at
            _git([*git_dir, "config", "remote.origin.url", spec.url], env, spec)
            _git(
                [
                    *git_dir,
                    "fetch",
                    "--progress",
                    "--prune",
                    "--tags",
                    "--",
                    spec.url,
                    "+refs/heads/*:refs/heads/*",
                ],
                env,
                spec,
            )
            action = "fetched"
        else:
            tmp = lay.dir / f".clone-{uuid.uuid4().hex[:8]}"
            try:
                _git(["git", "clone", "--progress", "--bare", "--", spec.url, str(tmp)], env, spec)
                os.replace(tmp, lay.clone)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            action = "cloned"
        repo = open_repo(lay.clone)
        return {"action": action, "head": repo.resolve(spec.rev)}


#: git's defaults when the worker's environment sets neither: a transfer slower than
#: LOW_SPEED_LIMIT bytes/s for LOW_SPEED_TIME seconds is given up (git's own default is
#: to wait for ever), and so is a git that says nothing for that long (a connection
#: never answered, which curl would wait out for minutes).
LOW_SPEED_LIMIT = 1000
LOW_SPEED_TIME = 60


def git_env(spec: RepoSpec) -> dict[str, str]:
    """git's environment for a clone or fetch: never prompting; a stalled transfer given
    up (``GIT_HTTP_LOW_SPEED_LIMIT``/``_TIME``, unless the worker's environment sets
    them); with a token in ``$token_env`` (the worker's environment) and an https:// URL,
    an authorization header added to git's configuration through the environment
    (``GIT_CONFIG_COUNT``/``_KEY_n``/``_VALUE_n``: on no command line, not stored in the
    clone). Over any other protocol no token is sent."""
    from diffrisk.git.repo import GIT_ENV

    env = {**os.environ, **GIT_ENV}
    env.setdefault("GIT_HTTP_LOW_SPEED_LIMIT", str(LOW_SPEED_LIMIT))
    env.setdefault("GIT_HTTP_LOW_SPEED_TIME", str(LOW_SPEED_TIME))
    token = os.environ.get(spec.token_env, "")
    if token and spec.url is not None and spec.url.lower().startswith("https://"):
        count = env.get("GIT_CONFIG_COUNT", "") or "0"
        if not count.isdigit():
            raise GitCommandError(
                f"GIT_CONFIG_COUNT in the environment is {count!r}, not a number",
                hint="unset GIT_CONFIG_COUNT in the workers' environment, or make it the "
                "number of GIT_CONFIG_KEY_n/GIT_CONFIG_VALUE_n pairs",
            )
        n = int(count)  # after the configuration the environment already gives git
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            {
                "GIT_CONFIG_COUNT": str(n + 1),
                f"GIT_CONFIG_KEY_{n}": "http.extraHeader",
                f"GIT_CONFIG_VALUE_{n}": f"Authorization: Basic {basic}",
            }
        )
    return env


def _low_speed_time(env: dict[str, str]) -> int:
    value = env.get("GIT_HTTP_LOW_SPEED_TIME", "")
    return int(value) if value.isdigit() and int(value) > 0 else LOW_SPEED_TIME


def _git(argv: list[str], env: dict[str, str], spec: RepoSpec) -> None:
    """Run git for ``spec``'s clone or fetch; stop it when it says nothing (no progress,
    no message) for the low-speed time; a failure raises :class:`GitCommandError` with
    what went wrong (refused, unreachable, silent, cut off) and how to fix it."""
    import collections
    import re
    import signal
    import threading

    quiet_for = _low_speed_time(env)
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # no terminal to prompt on; killed as a group
    )
    assert proc.stderr is not None
    lines: collections.deque[str] = collections.deque(maxlen=60)
    heard = [time.monotonic()]

    def listen() -> None:
        assert proc.stderr is not None
        rest = b""
        while True:
            try:
                chunk = os.read(proc.stderr.fileno(), 65536)
            except (OSError, ValueError):  # closed after a reader that waited too long
                break
            if not chunk:
                break
            heard[0] = time.monotonic()
            *done, rest = re.split(rb"[\r\n]", rest + chunk)
            lines.extend(d.decode(errors="replace").strip() for d in done if d.strip())
        if rest.strip():
            lines.append(rest.decode(errors="replace").strip())

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    silent = False
    try:
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() - heard[0] > quiet_for + 2:  # curl's own limit first
                    silent = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
    except BaseException:  # interrupted: git is in a session of its own, so stop it here
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    reader.join(timeout=10)
    proc.stderr.close()
    if proc.returncode != 0:
        raise _git_failure(argv, spec, list(lines), proc.returncode, quiet_for if silent else None)


def _git_failure(
    argv: list[str], spec: RepoSpec, lines: list[str], code: int, silent_for: int | None
) -> GitCommandError:
    """What a failed clone or fetch of ``spec`` means, from git's messages."""
    import re

    token = os.environ.get(spec.token_env, "")
    if token:  # git does not print it; were it to, it would go no further
        lines = [ln.replace(token, "***") for ln in lines]
    op = next((a for a in argv[1:] if a in ("clone", "fetch", "config")), argv[1])
    url = spec.url or ""
    where = url
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.hostname:
            where = parts.hostname + (f":{parts.port}" if parts.port else "")
    said = [ln for ln in lines if re.match(r"(fatal|error|remote: error|warning):", ln)]
    text = "\n".join(lines)  # git's and curl's messages; progress lines match nothing
    last = (said or lines or [f"exit {code}"])[-1]
    env_var = f"${spec.token_env}"
    https = url.lower().startswith("https://")
    auth = re.search(
        r"could not read (Username|Password)|Authentication failed|"
        r"terminal prompts disabled|returned error: (401|403)",
        text,
    )
    if silent_for is not None:
        message = f"git {op} {url}: no answer from {where} for {silent_for} s; stopped"
        hint = (
            f"check that {where} is up and reachable from the workers; if it is only slow, "
            "raise GIT_HTTP_LOW_SPEED_TIME (seconds) in the workers' environment"
        )
    elif auth:
        status = (
            "403: forbidden" if "403" in (auth.group(2) or "") else "401: authentication required"
        )
        if not https:
            why = f"a token ({env_var}, the manifest's token_env) is sent over https:// only"
            hint = "use the repository's https:// URL in the manifest"
        elif os.environ.get(spec.token_env):
            why = f"the token in {env_var} (token_env) was sent and refused"
            hint = (
                f"put a valid token that can read {spec.name} in {env_var} in the workers' "
                "environment (token_env in the manifest names the variable)"
            )
        else:
            why = f"{env_var} is not set (token_env), so no token was sent"
            hint = (
                f"put a token that can read {spec.name} in {env_var} in the workers' "
                "environment (token_env in the manifest names the variable)"
            )
        message = f"git {op} {url}: the server refused access (HTTP {status}); {why}"
    elif m := re.search(
        r"Failed to connect[^\n]*|Could not resolve host[^\n]*|Connection refused[^\n]*|"
        r"Connection timed out[^\n]*|Could not resolve hostname[^\n]*",
        text,
    ):
        message = f"git {op} {url}: cannot connect to {where} ({m.group(0).rstrip('.')})"
        hint = f"check the URL, and that {where} is up and reachable from the workers"
    elif m := re.search(r"Operation too slow[^\n]*", text):
        message = f"git {op} {url}: the transfer from {where} stalled ({m.group(0)})"
        hint = (
            "a server or network that stopped sending; run again (a clone is kept only "
            "whole), or raise GIT_HTTP_LOW_SPEED_TIME (seconds) in the workers' environment"
        )
    elif m := re.search(r"SSL certificate problem[^\n]*|certificate verif[^\n]*", text):
        message = f"git {op} {url}: the TLS certificate of {where} is not trusted ({m.group(0)})"
        hint = (
            "for a server with a private certificate authority, give git its certificate "
            "in the workers' environment: GIT_SSL_CAINFO=/path/to/ca.pem"
        )
    elif m := re.search(
        r"transfer closed with outstanding read data[^\n]*|early EOF|unexpected disconnect|"
        r"Connection reset[^\n]*|Recv failure[^\n]*|recv error[^\n]*|the remote end hung up|"
        # what fetch-pack says when the pack stops short (curl may die before it speaks)
        r"protocol error: bad pack header|invalid index-pack output",
        text,
    ):
        message = (
            f"git {op} {url}: the connection to {where} broke during the transfer "
            f"({m.group(0)}); nothing of it was kept"
        )
        hint = "a network or server failure: run again"
    elif re.search(r"not found|returned error: 404|does not appear to be a git repository", text):
        message = f"git {op} {url}: no repository there ({last})"
        hint = "check the URL (a private repository may answer 404 without a valid token)"
    else:
        message = f"git {op} {url} failed: {last}"
        hint = f"check the URL, the network and the token in {env_var} (token_env)"
    return GitCommandError(message, hint=hint)


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
