"""Where diffrisk keeps its files for a repository: the data directory and the names of
its files (:class:`diffrisk.data.datadir.DataDir` reads them)."""

from __future__ import annotations

from pathlib import Path

from diffrisk.errors import DataError
from diffrisk.git.repo import GitRepo

DATA_DIR_NAME = ".diffrisk"

#: The files of a data directory (docs/schema.md has their columns).
META_FILE = "meta.json"
CHANGES_FILE = "changes.parquet"
FILES_FILE = "files.parquet"
BLOB_METRICS_FILE = "blob_metrics.parquet"
LABELS_FILE = "labels.parquet"
LINKS_FILE = "szz_links.parquet"
SZZ_CACHE_FILE = "szz_cache.parquet"
PREDICTIONS_FILE = "predictions.parquet"
MODELS_DIR = "models"


def default_data_dir(repo: str | Path) -> Path:
    """REPO/.diffrisk for a work tree; REPO/diffrisk for a bare repository."""
    p = Path(repo)
    if (p / "HEAD").is_file() and (p / "objects").is_dir() and not (p / ".git").exists():
        return p / "diffrisk"
    return p / DATA_DIR_NAME


def models_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / MODELS_DIR


def refuse_committed(repo: GitRepo, data_dir: str | Path) -> None:
    """Stop when the data directory's files are committed to the repository: in a pull
    request's checkout they are the pull request's, and a model it ships would judge it."""
    try:
        rel = Path(data_dir).resolve().relative_to(repo.path.resolve())
    except ValueError:
        return  # outside the work tree: nothing the repository can ship
    if repo.bare or str(rel) == ".":
        return
    out = repo.run("ls-tree", "-r", "--name-only", "HEAD", "--", rel.as_posix(), check=False)
    if out.strip():
        raise DataError(
            f"{data_dir} holds files committed to the repository ({rel.as_posix()}/ is in HEAD): "
            "a pull request could ship its own dataset and model there",
            hint="remove it from the repository (`git rm -r --cached` and .gitignore it) and "
            "keep the data outside the checkout (--data-dir; the action's default is "
            "RUNNER_TEMP)",
        )
