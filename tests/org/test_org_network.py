"""``diffrisk org`` cloning and fetching over the network: real repositories served by
``git http-backend`` over smart HTTP and HTTPS on 127.0.0.1 (:mod:`gitserver`), through
``diffrisk org``'s own path (the CLI, or :func:`org_stages`) on a Dask cluster whose
workers are threads of this process, so that they see the environment the test sets
(``$token_env``, ``GIT_SSL_CAINFO``: what a worker's own environment would hold).

A token travels as an ``Authorization`` header over HTTPS only, and is found nowhere
after a run: not in the clone, the status files, the run records, the logs or the
command's output. A refused token, an unreachable or silent server and a server that
dies in the middle of a pack each fail their repository with a clear reason, quickly,
leave no half-written clone, and do not stop the other repositories."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from gitserver import GitServer, SelfSigned, Unanswered, basic_auth, closed_port_url, self_signed
from orgrepos import generated_history

from diffrisk.cli import cli
from diffrisk.org.jobs import OrgOptions, org_stages
from diffrisk.org.manifest import load_manifest
from diffrisk.org.tasks import RepoLayout, git_env

TOKEN = "tok-7c1f0d9e2b-network-test"  # not a real token; searched for after each run
TOKEN_ENV = "ORG_NET_TOKEN"
MINED = ("changes.parquet", "files.parquet")


@pytest.fixture(scope="module")
def threads_cluster() -> Iterator[str]:
    """Two Dask workers of one thread each, in this process (they see os.environ)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    ) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, cert: SelfSigned) -> pytest.MonkeyPatch:
    """The workers' environment: the token, git trusting the test certificate, and no
    git configuration of the machine's user."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("GIT_SSL_CAINFO", str(cert.cert))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_HTTP_LOW_SPEED_LIMIT", "GIT_HTTP_LOW_SPEED_TIME", "GIT_CONFIG_COUNT"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _manifest(path: Path, repos: dict[str, str], *, token_env: str = TOKEN_ENV) -> Path:
    lines = [f'token_env = "{token_env}"', ""]
    for name, where in repos.items():
        key = "url" if "://" in where else "path"
        lines += ["[[repo]]", f'name = "{name}"', f'{key} = "{where}"', ""]
    path.write_text("\n".join(lines))
    return path


def _served(project_root: Path, name: str, commits: int, seed: int, *, hold_back: int = 0) -> Path:
    """A bare repository to serve at ``name``.git; with ``hold_back``, the last commits
    are kept aside in ``name``-full.git, for :func:`_push_the_rest`."""
    target = project_root / f"{name}.git"
    if not hold_back:
        return generated_history(target, commits, seed=seed)
    full = generated_history(project_root / f"{name}-full.git", commits, seed=seed)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(target)], check=True)
    _push(full, target, f"main~{hold_back}")
    return target


def _push(src: Path, dst: Path, rev: str) -> None:
    subprocess.run(
        ["git", "--git-dir", str(src), "push", "-q", str(dst), f"{rev}:refs/heads/main"],
        check=True,
    )


def _push_the_rest(served: Path) -> None:
    _push(served.with_name(served.name.replace(".git", "-full.git")), served, "main")


def _table(path: Path) -> pd.DataFrame:
    df = pq.read_table(path).to_pandas()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(
                lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v
            )
    keys = [c for c in ("sha", "path") if c in df.columns]
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def _no_token_anywhere(root: Path, *texts: str) -> None:
    """Neither the token nor its header form in any file under ``root`` (clones
    included) nor in ``texts``."""
    forms = [TOKEN.encode(), basic_auth(TOKEN).split()[1].encode()]
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert not any(f in data for f in forms), p
    for t in texts:
        assert not any(f.decode() in t for f in forms)


def _invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output + (r.stderr if r.stderr not in r.output else "")


def _by(res: object) -> dict[tuple[str, str], object]:
    return {(o.name, o.stage): o for o in res.outcomes}  # type: ignore[attr-defined]


def _clone_is_whole(clone: Path) -> None:
    r = subprocess.run(
        ["git", "--git-dir", str(clone), "fsck", "--connectivity-only", "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def _refs(clone: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(clone), "for-each-ref"], capture_output=True, text=True, check=True
    ).stdout


def test_clone_over_https_with_the_token_mines_as_the_source_and_a_second_run_fetches(
    tmp_path: Path,
    threads_cluster: str,
    env: pytest.MonkeyPatch,
    cert: SelfSigned,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    served = tmp_path / "served"
    private = _served(served, "acme/private", 130, seed=3, hold_back=12)
    public = _served(served, "acme/public", 40, seed=5)
    with (
        GitServer(served, tls=cert, token=TOKEN) as https,
        GitServer(served) as http,
    ):
        man = _manifest(
            tmp_path / "org.toml",
            {
                "acme/private": https.url("acme/private.git"),
                "acme/public": http.url("acme/public.git"),
            },
        )
        root = tmp_path / "diffrisk-org"
        code, out = _invoke("org", "mine", str(man), "--scheduler", threads_cluster, "--json")
        assert code == 0, out
        first = json.loads(out[out.index("{") :])
        outcomes = {(o["name"], o["stage"]): o for o in first["outcomes"]}
        assert outcomes["acme/private", "fetch"]["details"]["action"] == "cloned"
        assert outcomes["acme/public", "fetch"]["details"]["action"] == "cloned"
        assert outcomes["acme/private", "mine"]["details"]["commits"] == 118

        # the token went over HTTPS, on every request; never over plain HTTP
        assert https.authorizations() and set(https.authorizations()) == {basic_auth(TOKEN)}
        assert http.authorizations() and set(http.authorizations()) == {None}

        # the clone mines to the same tables as the served repository itself
        for name, src in (("acme/private", private), ("acme/public", public)):
            seq = tmp_path / "seq" / name
            code, text = _invoke("mine", "--repo", str(src), "--data-dir", str(seq), "-q")
            assert code == 0, text
            for t in MINED:
                pd.testing.assert_frame_equal(
                    _table(RepoLayout(root, name).data / t), _table(seq / t), obj=f"{name} {t}"
                )

        # new commits pushed to the served repository: fetched, and only they are mined
        _push_the_rest(private)
        res = org_stages(OrgOptions(man, scheduler=threads_cluster), ["fetch", "mine"])
        out2 = _by(res)
        assert not res.failed, res.failed
        assert out2["acme/private", "fetch"].details["action"] == "fetched"  # type: ignore[attr-defined]
        assert out2["acme/private", "mine"].details["new_commits"] == 12  # type: ignore[attr-defined]
        assert out2["acme/private", "mine"].details["commits"] == 130  # type: ignore[attr-defined]
        assert out2["acme/public", "mine"].details["new_commits"] == 0  # type: ignore[attr-defined]
        assert set(https.authorizations()) == {basic_auth(TOKEN)}
        heads = subprocess.run(
            ["git", "--git-dir", str(RepoLayout(root, "acme/private").clone), "rev-parse", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert (
            heads
            == subprocess.run(
                ["git", "--git-dir", str(private), "rev-parse", "main"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )

    # the token is nowhere: clones (config included), status.json, runs/, data, output, logs
    config = (RepoLayout(root, "acme/private").clone / "config").read_text()
    assert "extraheader" not in config.lower() and "authorization" not in config.lower()
    _no_token_anywhere(root, out, caplog.text)


def test_a_refused_or_missing_token_fails_that_repository_clearly_and_the_others_complete(
    tmp_path: Path,
    threads_cluster: str,
    env: pytest.MonkeyPatch,
    cert: SelfSigned,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    served = tmp_path / "served"
    _served(served, "acme/private", 20, seed=7)
    local = generated_history(tmp_path / "local" / "ok.git", 20, seed=8)
    root = tmp_path / "diffrisk-org"
    with (
        GitServer(served, tls=cert, token="the-right-one") as https,
        GitServer(served, token="the-right-one") as http,
    ):
        man = _manifest(
            tmp_path / "org.toml",
            {
                "acme/private": https.url("acme/private.git"),
                "acme/plain": http.url("acme/private.git"),
                "acme/local": str(local),
            },
        )
        # a token that the server refuses
        code, out = _invoke("org", "mine", str(man), "--scheduler", threads_cluster)
        assert code == 2, out
        assert "2 of 3 repositories failed" in " ".join(out.split())
        st = json.loads(RepoLayout(root, "acme/private").status.read_text())
        reason = st["fetch"]["reason"] + " " + (st["fetch"]["hint"] or "")
        assert st["fetch"]["status"] == "failed" and st["mine"]["status"] == "skipped"
        assert "401" in reason and f"${TOKEN_ENV}" in reason and "token_env" in reason
        assert "refused" in reason
        assert https.authorizations() == [basic_auth(TOKEN)]  # tried once, not again

        # over plain HTTP the token is not sent: the reason says so
        plain = json.loads(RepoLayout(root, "acme/plain").status.read_text())["fetch"]
        assert plain["status"] == "failed" and "https" in plain["reason"] + plain["hint"]
        assert set(http.authorizations()) == {None}

        local_st = json.loads(RepoLayout(root, "acme/local").status.read_text())
        assert {local_st[s]["status"] for s in ("fetch", "mine")} == {"ok"}
        for name in ("acme/private", "acme/plain"):
            lay = RepoLayout(root, name)
            assert not lay.clone.exists() and not list(lay.dir.glob(".clone-*"))
        _no_token_anywhere(root, out, caplog.text)

        # no token at all in the environment: said so, with the variable's name
        env.delenv(TOKEN_ENV)
        res = org_stages(
            OrgOptions(man, scheduler=threads_cluster, only=("acme/private",)), ["fetch"]
        )
        bad = res.failed["acme/private"]
        assert "401" in bad.reason and f"${TOKEN_ENV} is not set" in bad.reason + str(bad.hint)

        # the right token: the same manifest completes
        env.setenv(TOKEN_ENV, "the-right-one")
        res = org_stages(
            OrgOptions(man, scheduler=threads_cluster, only=("acme/private",)), ["fetch"]
        )
        assert not res.failed and _by(res)["acme/private", "fetch"].details["action"] == "cloned"  # type: ignore[attr-defined]


def test_an_unreachable_or_silent_server_fails_its_repository_quickly(
    tmp_path: Path, threads_cluster: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("GIT_HTTP_LOW_SPEED_TIME", "3")  # what the workers' environment may set
    local = generated_history(tmp_path / "local" / "ok.git", 10, seed=9)
    with Unanswered() as dropped:
        man = _manifest(
            tmp_path / "org.toml",
            {
                "net/closed": closed_port_url("x.git"),
                "net/dropped": dropped.url("x.git"),
                "net/local": str(local),
            },
        )
        t0 = time.monotonic()
        res = org_stages(OrgOptions(man, scheduler=threads_cluster), ["fetch"])
        took = time.monotonic() - t0
    assert set(res.failed) == {"net/closed", "net/dropped"}
    closed = res.failed["net/closed"]
    assert "cannot connect" in closed.reason and "127.0.0.1" in closed.reason
    assert closed.seconds < 5
    dropped_out = res.failed["net/dropped"]
    assert "no answer" in dropped_out.reason and "3 s" in dropped_out.reason
    assert "GIT_HTTP_LOW_SPEED_TIME" in str(dropped_out.hint)
    assert dropped_out.seconds < 15 and took < 30
    for name in res.failed:
        lay = RepoLayout(res.root, name)
        assert not lay.clone.exists() and not list(lay.dir.glob(".clone-*"))


def test_git_waits_a_bounded_time_by_default(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With nothing set, a stalled transfer is given up after a minute (git's default
    is to wait for ever), and a worker's own settings win."""
    spec = load_manifest(_manifest(tmp_path / "org.toml", {"a/b": "https://h/a/b.git"})).repos[0]
    e = git_env(spec)
    assert e["GIT_HTTP_LOW_SPEED_LIMIT"] == "1000" and e["GIT_HTTP_LOW_SPEED_TIME"] == "60"
    env.setenv("GIT_HTTP_LOW_SPEED_TIME", "600")
    assert git_env(spec)["GIT_HTTP_LOW_SPEED_TIME"] == "600"
    # the header is added to git's environment configuration, not over what is there
    env.setenv("GIT_CONFIG_COUNT", "1")
    env.setenv("GIT_CONFIG_KEY_0", "http.sslVerify")
    env.setenv("GIT_CONFIG_VALUE_0", "true")
    e = git_env(spec)
    assert e["GIT_CONFIG_COUNT"] == "2" and e["GIT_CONFIG_KEY_0"] == "http.sslVerify"
    assert e["GIT_CONFIG_KEY_1"].lower() == "http.extraheader"
    assert e["GIT_CONFIG_VALUE_1"] == "Authorization: " + basic_auth(TOKEN)
    assert base64.b64decode(basic_auth(TOKEN).split()[1]).decode().endswith(TOKEN)


def test_a_server_that_dies_mid_pack_leaves_no_half_written_clone(
    tmp_path: Path, threads_cluster: str, env: pytest.MonkeyPatch, cert: SelfSigned
) -> None:
    served = tmp_path / "served"
    repo = _served(served, "acme/big", 400, seed=11, hold_back=150)
    man = tmp_path / "org.toml"
    root = tmp_path / "diffrisk-org"
    lay = RepoLayout(root, "acme/big")
    opts = OrgOptions(man, scheduler=threads_cluster)

    # the clone: cut in the middle of the pack
    with GitServer(served, tls=cert, token=TOKEN, die_after_bytes=4000) as dying:
        _manifest(man, {"acme/big": dying.url("acme/big.git")})
        res = org_stages(opts, ["fetch", "mine"])
    bad = res.failed["acme/big"]
    assert bad.stage == "fetch" and "connection" in bad.reason, bad.reason
    assert _by(res)["acme/big", "mine"].status == "skipped"  # type: ignore[attr-defined]
    assert not lay.clone.exists() and not list(lay.dir.glob(".clone-*"))

    # something that is not a clone where the clone goes (not written by diffrisk, which
    # renames only whole clones into place): replaced
    lay.clone.mkdir(parents=True)
    (lay.clone / "stray").write_text("not a repository\n")

    # a later run (the server back, on another port) clones it whole
    with GitServer(served, tls=cert, token=TOKEN) as back:
        _manifest(man, {"acme/big": back.url("acme/big.git")})
        res = org_stages(opts, ["fetch", "mine"])
    assert not res.failed, res.failed
    assert _by(res)["acme/big", "fetch"].details["action"] == "cloned"  # type: ignore[attr-defined]
    _clone_is_whole(lay.clone)
    before = _refs(lay.clone)

    # a fetch cut in the middle: the clone keeps what it had, whole
    _push_the_rest(repo)
    with GitServer(served, tls=cert, token=TOKEN, die_after_bytes=4000) as dying:
        _manifest(man, {"acme/big": dying.url("acme/big.git")})
        res = org_stages(opts, ["fetch"])
    assert "connection" in res.failed["acme/big"].reason
    _clone_is_whole(lay.clone)
    assert _refs(lay.clone) == before

    # and the next run fetches from where the manifest now says the repository is
    with GitServer(served, tls=cert, token=TOKEN) as moved:
        _manifest(man, {"acme/big": moved.url("acme/big.git")})
        res = org_stages(opts, ["fetch", "mine"])
    assert not res.failed, res.failed
    assert _by(res)["acme/big", "fetch"].details["action"] == "fetched"  # type: ignore[attr-defined]
    assert _by(res)["acme/big", "mine"].details["new_commits"] == 150  # type: ignore[attr-defined]
    _clone_is_whole(lay.clone)


def test_a_worker_killed_in_the_middle_of_a_clone_leaves_no_half_clone_and_it_runs_again(
    tmp_path: Path, cluster: str
) -> None:
    """On a cluster of worker processes: the worker running the clone is killed while
    the pack is arriving; the task runs again on another worker, which removes what
    the killed one left and clones whole."""
    served = tmp_path / "served"
    _served(served, "acme/big", 400, seed=12)
    root = tmp_path / "diffrisk-org"
    lay = RepoLayout(root, "acme/big")
    killed: dict[str, object] = {}
    with GitServer(served, die_after_bytes=4000, stall=True, cuts=1) as srv:
        man = _manifest(tmp_path / "org.toml", {"acme/big": srv.url("acme/big.git")})

        def kill_the_cloning_worker() -> None:
            if not srv.stalled.wait(timeout=120):
                return
            info = json.loads((lay.dir / ".diffrisk.lock.owner").read_text())
            killed["halfway"] = [p.name for p in lay.dir.glob(".clone-*")]
            killed["pid"] = int(info["pid"])
            os.kill(int(info["pid"]), signal.SIGKILL)
            srv.release.set()  # the killed worker's git loses its connection

        killer = threading.Thread(target=kill_the_cloning_worker, daemon=True)
        killer.start()
        res = org_stages(OrgOptions(man, scheduler=cluster, retries=2), ["fetch"])
        killer.join(timeout=10)
    assert killed.get("halfway"), "the worker was not killed in the middle of the clone"
    out = _by(res)["acme/big", "fetch"]
    assert out.status == "ok", out.reason  # type: ignore[attr-defined]
    assert out.details["action"] == "cloned" and out.pid != killed["pid"]  # type: ignore[attr-defined]
    assert not list(lay.dir.glob(".clone-*"))
    _clone_is_whole(lay.clone)
