"""Source-line features: the label stage's source rule applied to the mined file rows.

Which files count as source (:class:`SourceFilter`, the one definition, which SZZ blames
by; :func:`is_source_path` and :func:`source_file_mask` apply it), and per commit the lines
added to them (``la_source``), their lines of code and control-flow lines (``la_code``,
``la_control``) and their distinct tokens (``code_tokens``), added to the changes rows by
:func:`with_source_lines` and :func:`with_code_lines`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from diffrisk.config import LabelConfig
from diffrisk.data.schema import CODE_TOKENS, LA_CODE, LA_CONTROL, LA_SOURCE
from diffrisk.features.codelines import join_tokens
from diffrisk.features.cosmetic import ANNOTATIONS, FORMAT


@dataclass(frozen=True)
class SourceFilter:
    """The source rule: a path with one of ``extensions`` (any case) that matches none of
    the ``exclude`` patterns (``label.source_extensions`` / ``exclude_paths``); SZZ blames
    only such files, and the source-line features count only them."""

    extensions: frozenset[str]
    exclude: tuple[str, ...]

    @classmethod
    def of(cls, extensions: Iterable[str], exclude: Iterable[str]) -> SourceFilter:
        return cls(frozenset(e.lower() for e in extensions), tuple(exclude))

    def __call__(self, path: str) -> bool:
        p = PurePosixPath(path)
        if p.suffix.lower() not in self.extensions:
            return False
        # fnmatch's "*" crosses "/", so "tests/*" matches at any depth below tests/.
        return not any(fnmatch.fnmatchcase(path, pat) for pat in self.exclude)

    @classmethod
    def of_config(cls, cfg: LabelConfig) -> SourceFilter:
        """The filter of ``label.source_extensions`` and ``label.exclude_paths``."""
        return cls.of(cfg.source_extensions, cfg.exclude_paths)


def is_source_path(path: str, cfg: LabelConfig) -> bool:
    """The label stage's source rule: :class:`SourceFilter` of the ``label`` settings, or
    every file with ``source_only`` off."""
    return _source_rule(cfg)(path)


def _source_rule(cfg: LabelConfig) -> Callable[[str], bool]:
    if not getattr(cfg, "source_only", True):
        return bool  # every (named) file
    source = SourceFilter.of_config(cfg)
    return lambda path: bool(path) and source(path)


def source_file_mask(files: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """File rows the label stage's source rule counts: a source path, not binary."""
    paths = files["path"].astype(str)
    rule = _source_rule(cfg)
    src = {p: rule(p) for p in pd.unique(paths)}
    mask = paths.map(src).astype(bool)
    if "binary" in files.columns:
        mask &= ~files["binary"].fillna(False).astype(bool)
    return mask


def looked_through(files: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """File rows whose change the label stage looks through (``cosmetic``: a reformat with
    ``skip_cosmetic_commits``, an annotation-only change with ``skip_annotation_commits``):
    their added lines can never be blamed, so they count as no lines of code."""
    if "cosmetic" not in files.columns:
        return pd.Series(False, index=files.index)
    kinds = {FORMAT} if cfg.skip_cosmetic_commits else set()
    if cfg.skip_annotation_commits:
        kinds.add(ANNOTATIONS)
    return files["cosmetic"].isin(kinds)


def source_lines_added(files: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """Lines added to source files per commit (index: sha), the LApredict baseline's input."""
    if files.empty:
        return pd.Series(dtype="int64", name=LA_SOURCE)
    mask = source_file_mask(files, cfg)
    la = pd.to_numeric(files["la"], errors="coerce").fillna(0).where(mask, 0)
    return la.groupby(files["sha"]).sum().astype("int64").rename(LA_SOURCE)


def source_code_lines_added(
    files: pd.DataFrame, cfg: LabelConfig, column: str = LA_CODE
) -> pd.Series:
    """Added lines of code (or ``column``, e.g. ``la_control``) in source files per commit
    (index: sha); NaN when unknown (no such column, or git could not diff the commit)."""
    if files.empty or column not in files.columns:
        return pd.Series(dtype="float64", name=column)
    mask = source_file_mask(files, cfg)
    # a file change SZZ looks through adds no line it could blame
    code = pd.to_numeric(files.loc[mask, column], errors="coerce").where(
        ~looked_through(files, cfg)[mask], 0.0
    )
    # commits without source files are absent; NaN when none of its source files has a count
    return code.groupby(files.loc[mask, "sha"]).sum(min_count=1).astype("float64").rename(column)


def source_code_tokens(files: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """The distinct tokens of the added lines of code in source files per commit (index:
    sha; space-separated, sorted; the label stage's source rule, as ``la_code``)."""
    if files.empty or CODE_TOKENS not in files.columns:
        return pd.Series(dtype=object, name=CODE_TOKENS)
    mask = source_file_mask(files, cfg) & files[CODE_TOKENS].notna() & ~looked_through(files, cfg)
    sub = files.loc[mask, ["sha", CODE_TOKENS]]
    return sub.groupby("sha")[CODE_TOKENS].agg(join_tokens).rename(CODE_TOKENS)


def with_code_lines(frame: pd.DataFrame, files: pd.DataFrame, cfg: LabelConfig) -> pd.DataFrame:
    """Add ``la_code`` and ``la_control`` to changes rows: 0 without source files, NaN
    when unknown; and ``code_tokens`` ("" without source files or when unknown)."""
    out = frame.copy()
    for column in (LA_CODE, LA_CONTROL):
        if column not in files.columns:
            out[column] = np.nan
            continue
        per = source_code_lines_added(files, cfg, column)
        has_src = out["sha"].isin(set(per.index))
        out[column] = out["sha"].map(per).where(has_src, 0.0).astype("float64")
    tokens = source_code_tokens(files, cfg)
    out[CODE_TOKENS] = out["sha"].map(tokens).astype(object).fillna("")
    return out


def with_source_lines(changes: pd.DataFrame, files: pd.DataFrame, cfg: LabelConfig) -> pd.DataFrame:
    """Add ``la_source`` (lines added to source files) and ``la_code`` (of them, lines of code)."""
    la = source_lines_added(files, cfg)
    out = changes.copy()
    out[LA_SOURCE] = out["sha"].map(la).fillna(0).astype("int64")
    return with_code_lines(out, files, cfg)
