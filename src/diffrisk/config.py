"""Configuration: one pydantic model, read from ``.diffrisk.toml`` or ``[tool.diffrisk]``.

Lookup order for a repository at PATH: an explicit ``--config`` file, then
``PATH/.diffrisk.toml``, then the ``[tool.diffrisk]`` table of ``PATH/pyproject.toml``,
each in the work tree or, with ``rev``, as it is in that commit (:mod:`diffrisk.trusted`).
Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from diffrisk.errors import ConfigError, RepositoryError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class MineConfig(_Section):
    """Mining history into change features (docs/mining.md)."""

    code_metrics: bool = False
    """Compute code metrics (radon for Python, lizard for Java, C/C++, JS/TS, Go, Rust and the
    other languages lizard reads; every source file version is read: minutes on
    large histories, e.g. 6 of pip's 7.5 minutes; the models do not use them unless
    ``train.code_metrics``). Scoring computes them for a change's own files either way."""
    code_lines: bool = True
    """Count added lines of code per source file (``la_code``; diffs the source files, about
    half again the time of the Kamei features). Off: models use lines added to source files."""
    huge_commit_files: int = Field(1000, ge=1)
    """A commit touching at least this many files is flagged ``huge`` (vendor drops, mass renames)."""
    huge_commit_lines: int = Field(100_000, ge=1)
    """A commit adding plus deleting at least this many lines is flagged ``huge``."""
    workers: int | None = Field(None, ge=1)
    """Processes for code metrics; default: the number of cores."""


class FixesConfig(_Section):
    """Rule that classifies a commit as a bug fix (the FIX feature and SZZ's starting points)."""

    scope: Literal["subject", "message"] = "subject"
    """Where fix keywords are looked for: the subject line, or the whole message."""
    keywords: list[str] = Field(
        default_factory=lambda: [
            "fix",
            "fixes",
            "fixed",
            "fixing",
            "bug",
            "bugs",
            "bugfix",
            "defect",
            "defects",
            "crash",
            "crashes",
            "regression",
            "hotfix",
            "fault",
            "incorrect",
            "wrong",
            "broken",
        ]
    )
    """Words (whole, case-insensitive) that mark a commit subject as a bug fix."""
    exclude: list[str] = Field(
        default_factory=lambda: [
            "typo",
            "typos",
            "docs",
            "doc",
            "documentation",
            "docstring",
            "comment",
            "comments",
            "lint",
            "linter",
            "linting",
            "flake8",
            "ruff",
            "pylint",
            "mypy",
            "pyright",
            "typing",
            "annotation",
            "annotations",
            "hint",
            "hints",
            "ci",
            "tests",
            "test",
            "changelog",
            "readme",
            "whitespace",
            "formatting",
            "format",
            "style",
            "pre-commit",
            "release",
            "version",
            "bump",
            "merge",
            "revert",
            "spelling",
            "grammar",
            "link",
            "links",
            "warning",
            "warnings",
            "deprecation",
            "build",
            "packaging",
            "coverage",
        ]
    )
    """A subject whose fix keyword is about one of these (e.g. "fix typo") is not a bug fix."""


class JiraConfig(_Section):
    """The JIRA fix source of ``diffrisk label`` (``[label.jira]``; docs/labels.md): a commit
    whose message cites an issue key (``ZOOKEEPER-123``) of a bug is a fix. Issues come from
    ``export`` (offline) or else the REST API at ``url``, with the token in ``$JIRA_TOKEN``
    (a personal access token; with ``$JIRA_USER``, an account e-mail and API token for
    Jira Cloud; neither: anonymous)."""

    url: str | None = None
    """JIRA's base address, e.g. ``https://issues.apache.org/jira``; none: no REST lookups."""
    projects: list[str] = Field(default_factory=list)
    """Project keys whose issues commits cite (``["ZOOKEEPER"]``); empty: the keys that recur
    in the commit messages."""
    export: str | None = None
    """A JIRA export to read instead of the REST API: a CSV (JIRA's export, columns "Issue
    key", "Issue Type", "Created", "Resolution", "Status") or JSON (a saved search response)
    file, or a directory of them; relative to the repository."""
    bug_types: list[str] = Field(default_factory=lambda: ["Bug", "Defect"], min_length=1)
    """Issue types that are bugs (case-insensitive)."""
    resolutions: list[str] = Field(default_factory=list)
    """Resolutions a bug must have to count, e.g. ``["Fixed"]``; empty: any, unresolved too."""

    @field_validator("url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError("an http(s) address, e.g. https://issues.apache.org/jira")
        return v

    @field_validator("projects")
    @classmethod
    def _project_keys(cls, v: list[str]) -> list[str]:
        keys = [p.strip().upper() for p in v]
        bad = [p for p in keys if not re.fullmatch(r"[A-Z][A-Z0-9_]+", p)]
        if bad:
            raise ValueError("JIRA project keys, e.g. 'ZOOKEEPER'")
        return keys


FixSource = Literal["message", "developer", "github", "jira", "file"]
FIX_SOURCES: tuple[FixSource, ...] = ("message", "developer", "github", "jira", "file")


class LabelConfig(_Section):
    """SZZ labelling (docs/labels.md describes every filter and what it changes)."""

    verification_days: int = Field(90, ge=0)
    """A change younger than this (vs the newest mined commit) that no fix blames is unlabelled."""
    max_fix_files: int = Field(50, ge=1)
    """Fixes touching more files than this are not blamed (tangled or mass changes)."""
    ignore_whitespace: bool = True
    """Diff and blame with ``-w``: whitespace-only changes are neither blamed nor blamed for."""
    ignore_comments: bool = True
    """Deleted blank, comment-only and docstring lines are not blamed (AG-SZZ)."""
    skip_merges: bool = True
    """Links to merge commits are dropped from szz_links (merges are never labelled either way)."""
    issue_date_filter: bool = True
    """Drop candidates committed after the fix's bug report was opened, whenever a source
    gives that date (GitHub, JIRA, a fixes file)."""
    select: Literal["recent", "all"] = "recent"
    """Which blamed commits of a fix are labelled buggy: the most recent one (R-SZZ, about
    twice as precise on the developer-informed oracle) or every one (B-SZZ)."""
    python_indentation: bool = True
    """With ``ignore_whitespace``: a Python line whose indentation changed still counts as
    changed (it moved into or out of a block)."""
    skip_incidental: bool = True
    """Deleted imports, ``#include``/package lines, ``__version__``/``__all__`` and lines
    whose only change is a trailing comment are not blamed."""
    sources: list[FixSource] = Field(default_factory=lambda: list(FIX_SOURCES))
    """Fix sources used when available (``github`` needs a token, ``jira`` a URL or an
    export, ``file`` a ``--fixes`` file); see docs/labels.md."""
    blame_additions: bool = False
    """A fix that deletes no line SZZ could blame (it only adds: a missing check, a
    forgotten call) has the lines just before and after each insertion blamed instead. Off:
    on the developer-informed oracle it trades precision for recall (0.89/0.72 -> 0.86/0.75,
    F1 0.80 either way; docs/labels.md)."""
    judge_fix_changes: bool = True
    """A message-rule fix that changes no source file (only tests, docs, CI, stubs) is not
    a bug fix."""
    source_only: bool = True
    """Blame only source files (``source_extensions`` minus ``exclude_paths``)."""
    copy_detection: bool = False
    """Blame with ``-C`` (lines moved from other files of the same commit) besides ``-M``."""
    skip_cosmetic_commits: bool = True
    """Look through commits that left a Python file's AST unchanged (reformatting) when blaming."""
    skip_annotation_commits: bool = True
    """Look through commits that changed only a Python file's type annotations when blaming."""
    workers: int | None = Field(None, ge=1)
    """Processes running git blame; default: the number of cores."""
    source_extensions: list[str] = Field(
        default_factory=lambda: [
            ".py",
            ".pyx",
            ".pxd",
            ".pyi",
            ".c",
            ".h",
            ".cc",
            ".cpp",
            ".hpp",
            ".cxx",
            ".go",
            ".rs",
            ".java",
            ".kt",
            ".scala",
            ".js",
            ".jsx",
            ".ts",
            ".tsx",
            ".rb",
            ".php",
            ".cs",
            ".swift",
            ".m",
            ".mm",
            ".lua",
            ".sh",
            ".pl",
            # JavaScript modules, more C++ headers, Kotlin scripts, Dart,
            # Groovy, Zig, Elixir, Julia, R, and yacc/lex grammars (C in their actions)
            ".mjs",
            ".cjs",
            ".hh",
            ".hxx",
            ".kts",
            ".dart",
            ".groovy",
            ".zig",
            ".ex",
            ".exs",
            ".jl",
            ".r",
            ".y",
            ".yy",
            ".l",
            ".ll",
            # TypeScript modules, single-file components (their scripts are the code)
            ".mts",
            ".cts",
            ".vue",
            ".svelte",
        ]
    )
    """File endings SZZ treats as source code."""
    exclude_paths: list[str] = Field(
        default_factory=lambda: [
            "docs/*",
            "doc/*",
            "*/docs/*",
            "test/*",
            "tests/*",
            "testing/*",
            "*/tests/*",
            "*/test/*",
            "test_*.py",
            "*/test_*.py",
            "*_test.py",
            "*_test.go",
            "testdata/*",  # Go: test inputs, ignored by the go tool
            "*/testdata/*",
            "testsuite/*",
            "*/testsuite/*",
            "typing_tests/*",
            "*/typing_tests/*",
            "*_tests.py",
            "*Test.java",
            "*Tests.java",
            "*Test.kt",
            "*Tests.kt",
            "*_test.cc",
            "*_test.cpp",
            "*_unittest.cc",
            "*Tests.swift",
            "*Test.cs",
            "*Tests.cs",
            "*Spec.scala",
            "*Suite.scala",
            "*Test.php",
            "*_test.rb",
            # JavaScript/TypeScript (Jest, Vitest, Mocha, Playwright), RSpec, pytest fixtures
            "__tests__/*",
            "*/__tests__/*",
            "__mocks__/*",
            "*/__mocks__/*",
            "*.test.*",
            "*.spec.*",
            "e2e/*",
            "*/e2e/*",
            "spec/*",
            "*_spec.rb",
            "conftest.py",
            "*/conftest.py",
            "vendor/*",
            "*/vendor/*",
            "_vendor/*",
            "*/_vendor/*",
            "third_party/*",
            "*/third_party/*",
            "third-party/*",
            "*/third-party/*",
            "3rdparty/*",
            "*/3rdparty/*",
            "node_modules/*",
            "*/node_modules/*",
            "*.min.js",
            "*_pb2.py",
        ]
    )
    """Glob patterns of paths that are never blamed (docs, tests, vendored and generated code)."""
    detect_vendored: bool = True
    """Also treat directories the history shows to be vendored third-party code as excluded
    paths (synced by commits like "Update urllib3 to 1.20"; see ``diffrisk.features.vendored``)."""
    not_vendored: list[str] = Field(default_factory=list)
    """Directories (globs) never treated as vendored, e.g. ``["src/mypkg"]`` when detection
    mistakes one of the project's own packages for vendored code."""
    bug_labels: list[str] = Field(
        default_factory=lambda: ["bug", "type: bug", "kind/bug", "defect", "regression"]
    )
    """GitHub labels that mark an issue or pull request as a bug (with a token)."""
    jira: JiraConfig = Field(default_factory=JiraConfig)
    """The JIRA fix source (``[label.jira]``): commits citing a bug issue's key are fixes."""

    @field_validator("source_extensions")
    @classmethod
    def _dotted(cls, v: list[str]) -> list[str]:
        bad = [e for e in v if not e.startswith(".") or "/" in e or len(e) < 2]
        if bad:
            # "py" would match no file at all, and every change would look like no code
            raise ValueError(f"extensions start with a dot, e.g. '.py' (got {bad})")
        return v


MODEL_KINDS = ("logistic", "hgb", "poisson", "anchored", "tokens", "prior", "la")
"""The model kinds ``diffrisk train`` knows (``diffrisk.training.train``); ``la`` is the baseline."""


class TrainConfig(_Section):
    """Model training and time-ordered evaluation (docs/model.md)."""

    min_buggy: int = Field(50, ge=1)
    """Fewer buggy labelled changes than this: use the bundled model."""
    folds: int = Field(5, ge=2)
    """Rolling-origin folds of the time-ordered evaluation."""
    gap_days: int | None = Field(None, ge=0)
    """Gap between train and test periods; default: the verification latency."""
    model: Literal["auto", "logistic", "hgb", "poisson", "anchored", "tokens", "prior", "la"] = (
        "auto"
    )
    """Model to train; auto: the one that ranks best in the time-ordered evaluation."""
    bundled_candidate: bool = True
    """With ``model = "auto"``, the bundled cross-project model competes in the evaluation
    too (scored on the same folds, never refitted); when it ranks best it becomes the
    repository's model, a copy marked as not trained on this repository."""
    max_age_days: int = Field(30, ge=1)
    """A model older than this is stale and retrained by the actions."""
    code_metrics: bool = False
    """Give the learned models the radon columns (when the dataset has them); off by default,
    see docs/model.md for what they are measured to add."""


class ScoreConfig(_Section):
    """Risk levels and what a score report shows."""

    levels: Literal["rank", "probability"] = "rank"
    """How a change's level is decided: by its rank among the repository's changes of the
    past year (``high_share``, ``medium_share``: the same share of changes is high on every
    repository), or by its probability (``medium``, ``high``)."""
    high_share: float = Field(0.05, gt=0, lt=1)
    """With ``levels = "rank"``: the riskiest share of changes that is high risk."""
    medium_share: float = Field(0.15, ge=0, lt=1)
    """With ``levels = "rank"``: the share of changes after those that is medium risk."""
    min_reference: int = Field(100, ge=10)
    """Past-year changes needed to rank by; fewer: the whole mined history, then the
    model's own reference distribution (the bundled model's), then the probabilities."""
    medium: float = Field(0.4, ge=0, le=1)
    """With ``levels = "probability"``: probability from which a change is medium risk."""
    high: float = Field(0.7, ge=0, le=1)
    """With ``levels = "probability"``: probability from which a change is high risk."""
    top_factors: int = Field(5, ge=1)
    """Factors shown in each direction (raising and lowering the risk)."""
    top_files: int = Field(10, ge=1)
    """Hotspot files listed."""

    @model_validator(mode="after")
    def _ordered(self) -> ScoreConfig:
        if self.medium > self.high:
            raise ValueError(f"medium ({self.medium}) must not exceed high ({self.high})")
        if self.high_share + self.medium_share >= 1:
            raise ValueError(
                f"high_share + medium_share ({self.high_share} + {self.medium_share}) must be "
                "below 1: some changes must be low risk"
            )
        return self


class ReportConfig(_Section):
    """Reporting on GitHub (docs/reporting.md)."""

    comment_mode: Literal["update", "recreate", "off"] = "update"
    """The sticky PR comment: edit it in place, delete and post anew, or do not comment."""
    check_name: str = "diffrisk"
    """Name of the check run (and of the comment's hidden marker)."""
    template: str | None = None
    """Path (relative to the repository) of a Jinja2 template for the PR comment."""
    summary_template: str | None = None
    """Path (relative to the repository) of a Jinja2 template for the job summary."""


class GateConfig(_Section):
    """Merge and deployment gates (docs/gating.md)."""

    fail_on: Literal["high", "medium", "never"] = "high"
    """Block the merge (exit 1, check failure) at or above this risk level."""
    warn_on: Literal["high", "medium", "never"] = "medium"
    """Pass with a warning (check neutral) at or above this level."""
    fail_budget: float | None = Field(None, gt=0, lt=100)
    """Also block a change among the riskiest this-many percent of the reference changes
    (``score.levels`` rank reference), e.g. 10: about one change in ten is blocked on any
    repository. Unset: the level alone decides."""
    fail_probability: float | None = Field(None, gt=0, le=1)
    """Also block a change whose estimated probability reaches this. Unset: not used."""
    override_label: str = "diffrisk:accepted"
    """A PR label that accepts the risk: a block becomes a pass, and the report says who."""
    approvers: list[str] = Field(default_factory=list)
    """GitHub logins whose approving review accepts the risk."""
    deploy_max_risk: float | None = Field(None, ge=0, le=1)
    """Deployment fails when the riskiest change shipped is at or above this probability.
    Unset (the default): no limit on one change; a release of a few hundred changes nearly
    always holds one above any fixed probability (3-6% of a large project's commits score
    0.8 or more), so the expected-count limit, which grows with the release, decides."""
    deploy_max_expected: float | None = Field(None, ge=0)
    """Deployment fails when the expected number of defect-inducing changes reaches this.
    Unset: ``deploy_expected_factor`` times what the same number of the past year's commits
    carry on average (at least 1), so the limit grows with the release; a fixed 3.0 when
    that is unknown."""
    deploy_expected_factor: float = Field(2.0, gt=0)
    """Without ``deploy_max_expected``: how many times riskier than as many typical commits of
    the past year a release may be (1.5 is stricter, 3 more lenient)."""


class MonitorConfig(_Section):
    """``diffrisk monitor`` (docs/monitoring.md)."""

    recent_days: int = Field(90, ge=1)
    """Recent window compared with the training window (days up to the newest mined change)."""
    reference_days: int = Field(365, ge=30)
    """The reference for drift: the last this many days of the training window (or of the history before the recent window)."""
    psi_warn: float = Field(0.1, ge=0)
    """Population stability index at which a feature's drift is a warning (if the KS test agrees)."""
    psi_alert: float = Field(0.25, ge=0)
    """PSI at which drift is an alert (if the KS test agrees); an alert recommends retraining."""
    ks_alpha: float = Field(0.01, gt=0, lt=1)
    """Significance level of the two-sample Kolmogorov-Smirnov test."""
    auc_drop: float = Field(0.05, ge=0, le=1)
    """Retrain when the realized ROC-AUC falls more than this below the model's recorded one."""
    max_model_age_days: int = Field(90, ge=1)
    """Retrain when the model is older than this."""
    min_changes: int = Field(30, ge=2)
    """Fewer changes than this in either window: no drift verdict for the feature. Drift
    recommends retraining only once this many changes have been labelled since the model's
    training window."""
    min_buggy: int = Field(10, ge=1)
    """ROC-AUC is reported only with at least this many buggy and this many clean labelled changes."""
    period: Literal["Q", "M", "Y"] = "Q"
    """Period of the realized-accuracy table: quarter, month or year."""
    footer_days: int = Field(90, ge=1)
    """Window of the PR comment's realized-accuracy footer and of the report's recent log summary."""
    footer_min_buggy: int = Field(5, ge=1)
    """The footer appears once the prediction log holds at least this many changes later found buggy."""
    issue_title: str = "diffrisk model monitor"
    """Title of the GitHub issue ``diffrisk monitor --issue`` keeps up to date."""
    retrain_days: int = Field(365, ge=7)
    """``diffrisk monitor --retrain`` trains the challenger on the labelled changes of this many most recent days."""
    retrain_cooldown_days: int = Field(30, ge=0)
    """After ``--retrain`` kept the current model, a recommendation for the same kinds of reasons waits this many days (or for ``min_changes`` more labelled changes)."""


class Config(_Section):
    _source: Any = PrivateAttr(default=None)  # diffrisk.trusted.SettingsSource, or None
    _path: Any = PrivateAttr(default=None)  # the explicit --config path, if any

    @property
    def source(self) -> Any:
        """Where the configuration (and the report templates) were read from: a
        :class:`diffrisk.trusted.SettingsSource`, or None (defaults, no repository)."""
        return self._source

    @property
    def config_path(self) -> str | Path | None:
        """The explicit configuration file it was loaded from (``--config``), if any."""
        return self._path

    mine: MineConfig = Field(default_factory=MineConfig)
    fixes: FixesConfig = Field(default_factory=FixesConfig)
    label: LabelConfig = Field(default_factory=LabelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")  # pydantic's prefix for our own checks
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        got = e.get("input")
        shown = "" if e["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{key}: {msg}{shown}")
    return f"invalid configuration in {source}: " + "; ".join(lines)


def parse_config(data: dict[str, Any], source: str = "configuration") -> Config:
    """Validate a mapping (keys may use ``-`` or ``_``) into a :class:`Config`."""

    def norm(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {str(k).replace("-", "_"): norm(v) for k, v in obj.items()}
        return obj

    try:
        return Config.model_validate(norm(data))
    except ValidationError as err:
        raise ConfigError(
            _format_validation_error(err, source),
            hint="`diffrisk config --markdown` prints the configuration reference (every key, its default and allowed values)",
        ) from None


def _decode_toml(data: bytes, where: str) -> dict[str, Any]:
    """TOML from bytes: UTF-8 (a byte-order mark is allowed), else a clear error."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:64]:
        raise ConfigError(
            f"{where} is UTF-16 text; TOML files must be UTF-8",
            hint="save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{where} is not UTF-8 text (byte {err.start}: {data[err.start : err.start + 1]!r}); "
            "TOML files must be UTF-8",
            hint="save it as UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8`)",
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"{where} is not valid TOML: {err}", hint="fix the syntax error"
        ) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    return _decode_toml(data, str(path))


def _from_table(data: dict[str, Any], name: str, where: str) -> Config | None:
    """The configuration in a file's parsed TOML: a pyproject.toml's [tool.diffrisk]
    table (None when it has none), or the whole of any other file."""
    if name == "pyproject.toml":
        table = data.get("tool", {}).get("diffrisk")
        return None if table is None else parse_config(table, f"{where} [tool.diffrisk]")
    return parse_config(data, where)


def load_config(
    repo: str | Path | None = None,
    path: str | Path | None = None,
    rev: str | None = None,
) -> Config:
    """Load configuration for ``repo``; an explicit ``path`` wins. Defaults when none exists.

    With ``rev`` (a commit of ``repo``), the files are read as they are in that commit,
    ``path`` too when it lies inside the repository: how a pull request is judged comes
    from its trusted base, never from its own checkout. The returned config remembers
    where it came from (:attr:`Config.source`), for the report templates.
    """
    from diffrisk.trusted import SettingsSource

    source = SettingsSource.of(repo, rev) if repo is not None else None
    cfg = _load(source, path)
    cfg._source = source
    cfg._path = path
    return cfg


def load_judging_config(
    repo: str | Path, path: str | Path | None, base: str | None, worktree: bool = False
) -> Config:
    """The configuration a change based on ``base`` is judged by: as it is in ``base``
    (a pull request does not choose its own settings), unless ``worktree`` (the
    ``--worktree-config`` of ``score``, ``report`` and ``gate``). A ``repo`` that is not a
    git repository (a saved result gated elsewhere) has no commits to read from: its files
    are read as they are."""
    from diffrisk.git.repo import open_repo

    rev = None
    if base and not worktree:
        try:
            open_repo(repo, allow_shallow=True)
            rev = base
        except RepositoryError:
            rev = None
    return load_config(repo, path, rev=rev)


def _load(source: Any, path: str | Path | None) -> Config:
    if path is not None:
        p = Path(path)
        rel = source.inside(p) if source is not None and source.rev else None
        if rel is None:
            if not p.is_file():
                raise ConfigError(
                    f"configuration file {p} does not exist", hint="check the --config path"
                )
            return _from_table(_read_toml(p), p.name, str(p)) or Config()
        data = source.read(rel)
        if data is None:
            raise ConfigError(
                f"configuration file {source.describe(rel)} does not exist",
                hint="the configuration is read from the base commit: commit it there first, "
                "or check the --config path",
            )
        return (
            _from_table(_decode_toml(data, source.describe(rel)), p.name, source.describe(rel))
            or Config()
        )
    if source is not None:
        for name in (".diffrisk.toml", "pyproject.toml"):
            data = source.read(name)
            if data is None:
                continue
            where = source.describe(name)
            cfg = _from_table(_decode_toml(data, where), name, where)
            if cfg is not None:
                return cfg
    return Config()


def pull_request_notes(config: Config, head: str) -> list[str]:
    """What the change from ``config``'s commit to ``head`` alters of the files that judge
    it (settings, templates, .mailmap, .gitattributes), one sentence each: none of it was
    applied to the change. Empty when ``config`` came from the work tree."""
    src = config.source
    if src is None or src.rev is None:
        return []
    from diffrisk.trusted import changed_paths

    changed = changed_paths(src.root, src.rev, head)
    notes = []
    try:
        new = load_config(src.root, config.config_path, rev=head)
    except ConfigError as err:
        notes.append(
            f"this change makes diffrisk's settings invalid ({err.message}): it was judged by "
            "the base's"
        )
    else:
        if new.model_dump() != config.model_dump():
            notes.append(
                "this change edits diffrisk's settings: it was judged by the base's, and the "
                "new ones apply once it is merged"
            )
    templates = sorted(
        {t for t in (config.report.template, config.report.summary_template) if t} & changed
    )
    if templates:
        notes.append(
            f"this change edits the report template ({', '.join(templates)}): the base's was used"
        )
    if ".mailmap" in changed:
        notes.append("this change edits .mailmap: its authors were mapped by the base's")
    if any(p.rsplit("/", 1)[-1] == ".gitattributes" for p in changed):
        notes.append(
            "this change edits .gitattributes: diffrisk counts lines the same whatever the "
            "attributes say, so it changes nothing here"
        )
    return notes


def to_markdown() -> str:
    """The configuration reference (docs/configuration.md is this text)."""
    import json

    out = [
        "# Configuration",
        "",
        "Generated by `diffrisk config --markdown` from `src/diffrisk/config.py`.",
        "",
        "diffrisk reads `--config FILE`, else `.diffrisk.toml` in the repository, else the",
        "`[tool.diffrisk]` table of its `pyproject.toml`. Keys may use `-` or `_`. Unknown keys and",
        "invalid values are errors that name the key and the allowed values. The file must be",
        "UTF-8. `score`, `gate` and `report` read these files (and the report templates) as they",
        "are in the base commit, so a pull request is judged by its target's settings, not its",
        "own (`--worktree-config` to try settings locally; [security](security.md)); the other",
        "commands read the work tree, or the commit named by `--config-rev`. Example:",
        "",
        "```toml",
        "[gate]",
        'fail_on = "high"',
        'approvers = ["alice"]',
        "",
        "[label]",
        "verification_days = 120",
        "```",
        "",
    ]
    todo: list[tuple[str, Any]] = [(name, f.annotation) for name, f in Config.model_fields.items()]
    while todo:
        section, model = todo.pop(0)
        assert isinstance(model, type) and issubclass(model, BaseModel)
        out += [f"## `[{section}]`", "", " ".join((model.__doc__ or "").split()), ""]
        out += ["| key | default | meaning |", "| --- | --- | --- |"]
        nested = []
        for name, f in model.model_fields.items():
            if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
                nested.append((f"{section}.{name}", f.annotation))  # its own table, next
                continue
            default = f.get_default(call_default_factory=True)
            shown = json.dumps(default)
            doc = (f.description or "").replace("\n", " ").replace("|", "\\|")
            out.append(f"| `{name}` | `{shown}` | {' '.join(doc.split())} |")
        out.append("")
        todo[:0] = nested
    return "\n".join(out)
