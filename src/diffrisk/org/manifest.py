"""The manifest: which repositories ``diffrisk org`` works on, and how (TOML, validated).

::

    root = "diffrisk-org"          # where results go (relative to this file); --root wins
    token_env = "GITHUB_TOKEN"     # the environment variable holding a token (never the token)

    [defaults]                     # what every repository starts from
    rev = "HEAD"
    [defaults.config]              # diffrisk settings, as in .diffrisk.toml
    mine.code_metrics = false

    [[repo]]
    url = "https://github.com/pallets/flask.git"

    [[repo]]
    path = "../checkouts/click"    # a local repository (work tree or bare), used in place
    name = "pallets/click"
    rev = "main"
    github_issues = true           # GitHub bug labels as a fix source (token from token_env)
    [repo.config]
    label.verification_days = 120

A repository's diffrisk settings are ``[defaults.config]`` merged with its own
``[repo.config]`` (the repository's wins, key by key); with neither, the repository's
own ``.diffrisk.toml`` / ``pyproject.toml``, as ``diffrisk mine`` would read them.

Secrets never sit in a manifest: a URL with a user name or password in it, or a key that
looks like a credential (``token``, ``password``, ...), is refused, and the error names
the line. Every error names its line and key.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from diffrisk.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: ``owner/name``: each part a plain name (no path separators, not ``.`` or ``..``).
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Keys refused anywhere in a manifest: credentials come from the environment.
SECRET_KEYS = ("token", "password", "passwd", "secret", "credential", "api_key", "apikey")
DEFAULT_TOKEN_ENV = "GITHUB_TOKEN"
#: How GitHub's tokens begin: such a value is a token, never a variable's name.
_TOKEN_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")
DEFAULT_ROOT = "diffrisk-org"
_HINT = "docs/scale.md describes the manifest (every key, with an example)"
_SECRET_HINT = (
    "keep tokens out of the manifest: put the token in the environment variable that "
    "token_env names (default GITHUB_TOKEN)"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepoSettings(_Model):
    """What a repository is mined and labelled with (``[defaults]`` or a ``[[repo]]``)."""

    rev: str | None = None
    """The revision to mine (default HEAD)."""
    config: dict[str, Any] | None = None
    """diffrisk settings (the keys of .diffrisk.toml); validated as diffrisk validates them."""
    github_issues: bool | None = None
    """Use GitHub bug labels as a fix source (needs a token in token_env)."""
    github_repo: str | None = None
    """The GitHub ``owner/name`` for github_issues (default: from a github.com URL)."""

    @field_validator("github_repo")
    @classmethod
    def _owner_name(cls, v: str | None) -> str | None:
        if v is not None:
            _check_name(v)
        return v


class RepoEntry(RepoSettings):
    """One ``[[repo]]``: a clone URL or a local path, and its settings."""

    url: str | None = None
    path: str | None = None
    name: str | None = None
    """``owner/name``; default: from the URL or the path."""

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, v: str | None) -> str | None:
        if v is not None and re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*@", v, re.IGNORECASE):
            user = v.split("://", 1)[1].split("@", 1)[0]
            if ":" in user or not v.lower().startswith("ssh://"):
                raise ValueError(f"the URL carries credentials; {_SECRET_HINT}")
        return v

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str | None) -> str | None:
        if v is not None:
            _check_name(v)
        return v

    @model_validator(mode="after")
    def _one_source(self) -> RepoEntry:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of url and path")
        return self


class Manifest(_Model):
    root: str | None = None
    token_env: str = DEFAULT_TOKEN_ENV
    defaults: RepoSettings = Field(default_factory=RepoSettings)
    repo: list[RepoEntry] = Field(min_length=1)

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if v.lower().startswith(_TOKEN_PREFIXES):
            raise ValueError(
                f"this is a token, not the name of an environment variable; {_SECRET_HINT}"
            )
        if not _ENV_NAME.fullmatch(v):
            raise ValueError(
                f"not the name of an environment variable; {_SECRET_HINT}"
                if len(v) >= 20
                else "not the name of an environment variable (e.g. GITHUB_TOKEN)"
            )
        return v


def _check_name(v: str) -> None:
    parts = v.split("/")
    if len(parts) != 2 or not all(_PART.fullmatch(p) and p not in (".", "..") for p in parts):
        raise ValueError(f"{v!r} is not owner/name")


# -- the repositories, resolved --------------------------------------------------------------


@dataclass(frozen=True)
class RepoSpec:
    """One repository as the tasks see it (small and picklable: it travels to workers)."""

    name: str
    """``owner/name``."""
    url: str | None
    path: str | None
    """A local repository's absolute path (None for a URL: cloned under the root)."""
    rev: str
    config: dict[str, Any] | None
    """Merged diffrisk settings, or None for the repository's own."""
    github_repo: str | None
    token_env: str
    line: int | None = None

    @property
    def owner(self) -> str:
        return self.name.split("/")[0]

    @property
    def short(self) -> str:
        return self.name.split("/")[1]


@dataclass(frozen=True)
class OrgManifest:
    path: Path
    root: Path
    repos: list[RepoSpec]
    defaults_config: dict[str, Any] | None = None
    """``[defaults.config]``: the settings of what spans repositories (the org model)."""

    def select(self, names: list[str] | tuple[str, ...] | None) -> list[RepoSpec]:
        """The repositories named (all when none); an unknown name is an error."""
        if not names:
            return list(self.repos)
        known = {r.name: r for r in self.repos}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(
                f"{', '.join(unknown)} not in {self.path}",
                hint=f"known: {', '.join(sorted(known))}",
            )
        return [known[n] for n in names]


def name_from_url(url: str) -> str | None:
    """``owner/name`` of a clone URL (``https://host/owner/name.git``, ``git@host:owner/name``,
    ``file:///srv/git/owner/name.git``), or None."""
    tail = re.split(r"[:/]", url.rstrip("/"))
    if len(tail) < 2:
        return None
    owner, name = tail[-2], tail[-1].removesuffix(".git")
    cand = f"{owner}/{name}"
    try:
        _check_name(cand)
    except ValueError:
        return None
    return cand


def name_from_path(path: Path) -> str:
    """``owner/name`` of a local repository: the directory's name (a ``.git`` or ``repo``
    directory: its parent's), ``owner+name`` split at the ``+``, else owner ``local``."""
    p = path
    if p.name in (".git", "repo"):
        p = p.parent
    if p.name == "repo" or (p.name == ".git" and p.parent.name):
        p = p.parent
    base = p.name.removesuffix(".git")
    cand = base.replace("+", "/", 1) if "+" in base else f"local/{base}"
    cand = re.sub(r"[^A-Za-z0-9_./-]", "-", cand)
    try:
        _check_name(cand)
    except ValueError:
        cand = "local/" + re.sub(r"[^A-Za-z0-9_.-]", "-", base or "repo").lstrip(".-") or "repo"
    return cand


def _merge(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    if a is None or b is None:
        return b if a is None else a
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_manifest(path: str | Path, root: str | Path | None = None) -> OrgManifest:
    """Read and validate the manifest at ``path``; ``root`` overrides its ``root``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"cannot read the manifest {p}: {err.strerror}", hint="check the path"
        ) from None
    try:
        text = data.decode("utf-8-sig")
        raw = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{p} is not UTF-8 text", hint="save it as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{p} is not valid TOML: {err}", hint="fix the syntax error") from None
    lines = _key_lines(text)
    _refuse_secrets(raw, (), p, lines)
    try:
        m = Manifest.model_validate(_norm(raw))
    except ValidationError as err:
        raise ConfigError(_describe(err, p, lines), hint=_HINT) from None
    _check_configs(m, p, lines)
    base = p.resolve().parent
    out_root = Path(root) if root is not None else base / (m.root or DEFAULT_ROOT)
    specs: list[RepoSpec] = []
    seen: dict[str, int] = {}
    for i, e in enumerate(m.repo):
        line = _line_of(("repo", i), lines)
        local = None
        if e.path is not None:
            lp = Path(e.path).expanduser()
            local = str(lp if lp.is_absolute() else (base / lp).resolve())
        name = e.name or (
            name_from_url(e.url) if e.url is not None else name_from_path(Path(str(local)))
        )
        if name is None:
            raise ConfigError(
                f"invalid manifest {p}: line {line}, repo {i + 1}: cannot tell owner/name from url {e.url!r}",
                hint='add name = "owner/name"',
            )
        if name in seen:
            raise ConfigError(
                f"invalid manifest {p}: line {line}, repo {i + 1}: {name} is already repo {seen[name] + 1}",
                hint='each repository once; give name = "owner/name" to tell two apart',
            )
        seen[name] = i
        gh_repo = e.github_repo or m.defaults.github_repo
        issues = e.github_issues if e.github_issues is not None else m.defaults.github_issues
        if issues and gh_repo is None and e.url and "github.com" in e.url:
            gh_repo = name_from_url(e.url)
        if issues and gh_repo is None:
            raise ConfigError(
                f"invalid manifest {p}: line {line}, repo {i + 1} ({name}): github_issues needs github_repo",
                hint='add github_repo = "owner/name"',
            )
        specs.append(
            RepoSpec(
                name=name,
                url=e.url,
                path=local,
                rev=e.rev or m.defaults.rev or "HEAD",
                config=_merge(m.defaults.config, e.config),
                github_repo=gh_repo if issues else None,
                token_env=m.token_env,
                line=line,
            )
        )
    return OrgManifest(p, out_root, specs, m.defaults.config)


def _norm(obj: Any) -> Any:
    """Keys may use ``-`` or ``_`` (as in .diffrisk.toml)."""
    if isinstance(obj, dict):
        return {str(k).replace("-", "_"): _norm(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_norm(v) for v in obj]
    return obj


def _refuse_secrets(obj: Any, loc: tuple[Any, ...], path: Path, lines: list[Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = str(k).lower().replace("-", "_")
            if any(s in key for s in SECRET_KEYS) and key != "token_env":
                where = _where(path, (*loc, k), lines)
                raise ConfigError(
                    f"invalid manifest {path}: {where}: a credential in the manifest",
                    hint=_SECRET_HINT,
                )
            _refuse_secrets(v, (*loc, k), path, lines)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _refuse_secrets(v, (*loc, i), path, lines)


def _check_configs(m: Manifest, path: Path, lines: list[Any]) -> None:
    """Each ``config`` table, and each repository's merged one, validated as diffrisk
    validates .diffrisk.toml; errors name the line of the key."""
    from diffrisk.config import Config

    checks: list[tuple[tuple[Any, ...], dict[str, Any] | None]] = [
        (("defaults", "config"), m.defaults.config)
    ]
    for i, e in enumerate(m.repo):
        checks.append((("repo", i, "config"), e.config))
        if e.config is not None and m.defaults.config is not None:
            checks.append((("repo", i, "config"), _merge(m.defaults.config, e.config)))
    for loc, cfg in checks:
        if cfg is None:
            continue
        try:
            Config.model_validate(cfg)
        except ValidationError as err:
            hint = "`diffrisk config --markdown` lists every setting, its default and values"
            raise ConfigError(_describe(err, path, lines, loc), hint=hint) from None


def _describe(
    err: ValidationError, path: Path, lines: list[Any], prefix: tuple[Any, ...] = ()
) -> str:
    out = []
    for e in err.errors():
        loc = (*prefix, *e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing" and loc == ("repo",):
            msg = "no [[repo]]: list at least one repository"
        got = e.get("input")
        # never echo a URL: the one refused may carry a token
        if (
            e["type"] not in ("extra_forbidden", "missing")
            and not isinstance(got, dict | list)
            and loc[-1:] not in (("url",), ("token_env",))
        ):
            msg += f" (got {got!r})"
        out.append(f"{_where(path, loc, lines)}: {msg}")
    return f"invalid manifest {path}: " + "; ".join(out)


def _where(path: Path, loc: tuple[Any, ...], lines: list[Any]) -> str:
    """``line N, repo 3 key url`` for a validation location."""
    line = _line_of(loc, lines)
    parts = []
    rest = list(loc)
    if len(rest) >= 2 and rest[0] == "repo" and isinstance(rest[1], int):
        parts.append(f"repo {rest[1] + 1}")
        rest = rest[2:]
    keys = ".".join(str(x) for x in rest)
    if keys:
        parts.append(f"key {keys}")
    return (f"line {line}, " if line else "") + (", ".join(parts) or "top level")


# -- where a key is written ---------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _split_key(k: str) -> tuple[str, ...]:
    return tuple(p.strip().strip("\"'").replace("-", "_") for p in k.split("."))


def _key_lines(text: str) -> list[tuple[tuple[Any, ...], int]]:
    """Every table header and key of a TOML text with its line number (1-based), as a
    location: ``("repo", 2, "config", "label", "verification_days")``. Good enough for
    error messages: plain and dotted keys, tables and arrays of tables."""
    out: list[tuple[tuple[Any, ...], int]] = []
    counts: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    in_multiline = False
    for n, line in enumerate(text.splitlines(), 1):
        if in_multiline:
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_multiline = False
            continue
        h = _HEADER.match(line)
        if h:
            names = _split_key(h.group(2))
            # an array of tables below one: [repo.config] belongs to the newest [[repo]]
            resolved: tuple[Any, ...] = ()
            for part in names[:-1] if h.group(1) == "[[" else names:
                resolved = (*resolved, part)
                if resolved in counts:
                    resolved = (*resolved, counts[resolved] - 1)
            if h.group(1) == "[[":
                key = (*resolved, names[-1])
                counts[key] = counts.get(key, 0) + 1
                table = (*key, counts[key] - 1)
            else:
                table = resolved
            out.append((table, n))
            continue
        k = _KEY.match(line)
        if k and not line.lstrip().startswith("#"):
            out.append(((*table, *_split_key(k.group(1))), n))
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_multiline = True
    return out


def _line_of(loc: tuple[Any, ...], lines: list[tuple[tuple[Any, ...], int]]) -> int | None:
    """The line of the longest written location that ``loc`` starts with (a missing key:
    its table's header)."""
    best, best_len = None, -1
    for where, n in lines:
        if len(where) <= len(loc) and loc[: len(where)] == where and len(where) > best_len:
            best, best_len = n, len(where)
    return best
