"""A model's ``metadata.json`` as one typed record, :class:`ModelMetadata`.

Three writers make it: ``diffrisk train`` (a model fitted here, or a copy of the bundled
model chosen by the evaluation), ``diffrisk monitor --retrain`` and
``bench/train_bundled.py`` (the bundled model); all of them through :func:`build_metadata`,
and :meth:`ModelMetadata.saved` adds what the registry records on saving. Every
``metadata.json`` written so far reads back (:meth:`ModelMetadata.from_dict`): a key it
lacks reads as ``None`` (or the field's empty default), a key this version does not know
is kept in ``extra``. :meth:`ModelMetadata.to_dict` writes exactly the keys that were
given or read, in their order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class ModelMetadata:
    """What a saved model records about itself (the keys of ``metadata.json``)."""

    kind: str = ""
    features: list[str] = field(default_factory=list)
    code_metrics: bool = False
    #: ``{first_sha, first_date, last_sha, last_date}`` of the rows it was fitted on.
    training_window: dict[str, str] | None = None
    #: A copy of the bundled model: the bundled model's own window (none of this
    #: repository's changes trained it, so it has no ``training_window``).
    bundled_training_window: dict[str, str] | None = None
    #: A copy of the bundled model: ``{bundled: version, projects: [names]}``.
    origin: dict[str, Any] | None = None
    #: The bundled model: its training projects by name.
    projects: dict[str, dict[str, Any]] | None = None
    source: str | None = None
    fix_rule_version: int | None = None
    repository_head: str | None = None
    repository: str | None = None
    n_train: int | None = None
    n_buggy: int | None = None
    metrics: dict[str, Any] | None = None
    #: Raw feature -> training median (and the mean token score): contributions' reference.
    reference: dict[str, float] | None = None
    evaluation: dict[str, Any] | None = None
    label_settings: dict[str, Any] | None = None
    vendored: list[str] | None = None
    training_fingerprint: str | None = None
    anchor_scale: float | None = None
    #: A ``prior`` model: ``{bundled: version it starts from, penalty: C chosen}``.
    prior: dict[str, Any] | None = None
    #: Set by ``diffrisk monitor --retrain``: why this model replaced the current one.
    promotion: dict[str, Any] | None = None
    # written by the registry on saving (:meth:`saved`)
    version: str | None = None
    created: str | None = None
    model_file: str | None = None
    sha256: str | None = None
    libraries: dict[str, str] | None = None
    #: Keys this version of diffrisk does not know, kept as read.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The keys ``metadata.json`` holds, in order (known and ``extra`` ones).
    keys: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        """Read a ``metadata.json`` object as it is (values are not converted)."""
        known = {k: v for k, v in data.items() if k in _FIELDS}
        extra = {k: v for k, v in data.items() if k not in _FIELDS}
        return cls(**known, extra=extra, keys=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        """The ``metadata.json`` object: the keys given or read, in their order."""
        return {k: getattr(self, k) if k in _FIELDS else self.extra[k] for k in self.keys}

    def with_fields(self, **fields: Any) -> ModelMetadata:
        """A copy with ``fields`` set; a key already present keeps its place, a new one
        goes last."""
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(f"unknown metadata keys {sorted(unknown)}")
        keys = (*self.keys, *(k for k in fields if k not in self.keys))
        return dataclasses.replace(self, **fields, keys=keys)

    def saved(
        self, *, version: str, created: datetime, model_file: str, sha256: str, libraries: dict
    ) -> ModelMetadata:
        """The metadata as the registry saves it with its model file."""
        return self.with_fields(
            version=version,
            created=created.isoformat(),
            model_file=model_file,
            sha256=sha256,
            libraries=libraries,
        )

    @property
    def bundled_origin(self) -> str | None:
        """The bundled model's version when this is a copy of it, else None."""
        return (self.origin or {}).get("bundled")

    @property
    def created_at(self) -> datetime | None:
        """When the model was saved (``created``; the only time any writer records)."""
        if not self.created:
            return None
        try:
            t = pd.Timestamp(self.created)
        except (TypeError, ValueError):
            return None
        return (t.tz_localize("UTC") if t.tzinfo is None else t).to_pydatetime()

    def age_days(self, now: datetime | None = None) -> float | None:
        """Days since the model was saved, or None when it records no time."""
        created = self.created_at
        if created is None:
            return None
        now = now or datetime.now(timezone.utc)
        now = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now
        return (now - created).total_seconds() / 86400

    @property
    def training_end(self) -> pd.Timestamp | None:
        """The author time of the newest change it was fitted on (None for a bundled copy)."""
        last = (self.training_window or {}).get("last_date")
        return pd.Timestamp(last) if last else None

    def latest_fold_metric(self, metric: str) -> float | None:
        """``metric`` on the newest evaluated fold, as recorded when it was trained."""
        v = ((self.metrics or {}).get("latest_fold") or {}).get(metric)
        return float(v) if v is not None else None


_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelMetadata)) - {"extra", "keys"}


def build_metadata(kind: str, features: list[str], **fields: Any) -> ModelMetadata:
    """The metadata of a new model: ``kind``, ``features`` and the keys given, in the order
    given (the registry adds version, created, model file, sha256 and libraries)."""
    return ModelMetadata().with_fields(kind=kind, features=list(features), **fields)


def training_window(rows: pd.DataFrame) -> dict[str, str]:
    """The first and last of the time-sorted ``rows`` a model is fitted on."""
    first, last = rows.iloc[0], rows.iloc[-1]
    return {
        "first_sha": str(first["sha"]),
        "first_date": pd.Timestamp(first["author_time"]).isoformat(),
        "last_sha": str(last["sha"]),
        "last_date": pd.Timestamp(last["author_time"]).isoformat(),
    }
