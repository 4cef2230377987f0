"""Where diffrisk keeps its files for a repository."""

from __future__ import annotations

from pathlib import Path

DATA_DIR_NAME = ".diffrisk"


def default_data_dir(repo: str | Path) -> Path:
    """REPO/.diffrisk for a work tree; REPO/diffrisk for a bare repository."""
    p = Path(repo)
    if (p / "HEAD").is_file() and (p / "objects").is_dir() and not (p / ".git").exists():
        return p / "diffrisk"
    return p / DATA_DIR_NAME


def models_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "models"
