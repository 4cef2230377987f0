"""Versioned models: saved with skops (never pickle), checked before loading.

Layout of ``DATA_DIR/models``::

    registry.json            {"current": VERSION, "history": [promoted versions, oldest first]}
    VERSION/model.skops      the fitted estimator (skops, zip-deflated)
    VERSION/metadata.json    version, created, kind, training window, repository HEAD,
                             features, metrics, library versions, sha256 of model.skops
    VERSION/MODEL_CARD.md    a short model card

Loading checks the sha256 recorded in metadata.json before skops reads a byte of the
model, and loads only the types skops trusts plus the explicit allow-list below.
The package ships a cross-project model in ``diffrisk/bundled/`` (same layout); it is
used when the repository has no model of its own (:func:`load_model`).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk import __version__
from diffrisk.data.paths import models_dir
from diffrisk.data.store import atomic_write_bytes, set_aside
from diffrisk.errors import DataError, ModelError
from diffrisk.model import estimators, transforms
from diffrisk.model.contributions import linear_contributions, replacement_contributions
from diffrisk.model.metadata import ModelMetadata
from diffrisk.notices import notice

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
CARD_FILE = "MODEL_CARD.md"
STATE_FILE = "registry.json"

#: diffrisk's own functions and classes a model may contain, by name. Models saved before
#: the stage packages (0.1.0) name them under ``diffrisk.train``: both paths are trusted.
OWN_TYPES = (
    "kamei_transform",
    "la_transform",
    "lines_transform",
    "token_text",
    "shrink_extras",
    "PoissonRiskClassifier",
    "TimeCalibratedClassifier",
    "PriorLogisticRegression",
)
LEGACY_MODULE = "diffrisk.train"

#: Library types (beyond skops's defaults) a diffrisk model may contain.
LIBRARY_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.model_selection._split.TimeSeriesSplit",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.Interval",
    }
)


def trusted_types() -> frozenset[str]:
    """Every type a diffrisk model may contain; anything else is refused. diffrisk's own
    are named where they live now and where models saved by 0.1.0 name them."""
    own = {f"{LEGACY_MODULE}.{name}" for name in OWN_TYPES}
    for name in OWN_TYPES:
        obj = getattr(transforms, name, None) or getattr(estimators, name)
        own.add(f"{obj.__module__}.{obj.__qualname__}")
    return LIBRARY_TYPES | own


#: A version's name, as :meth:`ModelRegistry.save` makes them (``20250101T120000Z-hgb``):
#: a plain name of a directory right under ``models/``, never a path.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")

_FIX = "retrain with `diffrisk train --force`"
_BUNDLED_FIX = "reinstall diffrisk (pip install --force-reinstall diffrisk)"


def repair_hint(models_root: Path, can_roll_back: bool = True) -> str:
    """What to do about a damaged or missing repository model: the ways that work here."""
    back = ", go back to the earlier one with `diffrisk models rollback`," if can_roll_back else ""
    return (
        f"fit a new model with `diffrisk train --force`{back} or delete {models_root} to use "
        "the bundled model until a new one is trained"
    )


def library_versions() -> dict[str, str]:
    import sklearn
    import skops

    return {
        "sklearn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "diffrisk": __version__,
        "python": platform.python_version(),
    }


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps_model(estimator: Any) -> bytes:
    import skops.io as sio

    return sio.dumps(estimator, compression=zipfile.ZIP_DEFLATED, compresslevel=9)


def loads_model(data: bytes, origin: str, hint: str = _FIX) -> Any:
    """skops-load ``data``; refuse types outside skops's defaults and :func:`trusted_types`."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as err:  # skops raises many kinds on a damaged archive
        raise ModelError(
            f"{origin} is not a readable skops file ({type(err).__name__}: {err})", hint=hint
        ) from None
    refused = sorted(set(untrusted) - trusted_types())
    if refused:
        raise ModelError(
            f"{origin} contains types diffrisk does not trust: {', '.join(refused)}",
            hint="only load models made by `diffrisk train`; " + hint,
        )
    try:
        return sio.loads(data, trusted=list(untrusted))
    except Exception as err:
        raise ModelError(
            f"{origin} cannot be loaded ({type(err).__name__}: {err})", hint=hint
        ) from None


@dataclass
class LoadedModel:
    """A fitted model with its metadata; rows are ``changes.parquet`` columns."""

    version: str
    metadata: dict[str, Any]
    estimator: Any
    source: str = "repository"  # 'repository' | 'bundled' | 'bundled-chosen'
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def info(self) -> ModelMetadata:
        """:attr:`metadata` as a typed record."""
        return ModelMetadata.from_dict(self.metadata)

    @property
    def kind(self) -> str:
        return str(self.info.kind)

    @property
    def features(self) -> list[str]:
        return list(self.info.features)

    def _frame(self, changes_df: pd.DataFrame) -> pd.DataFrame:
        df = pd.DataFrame(changes_df).copy()
        missing = [
            c
            for c in self.features
            if c not in df.columns
            and c not in ("la_source", "la_code", "la_control", "code_tokens")
        ]
        if missing:
            raise ModelError(
                f"model {self.version} needs columns {missing} that the rows lack",
                hint="score rows with the changes.parquet columns (mine again with this diffrisk version)",
            )
        return df

    def predict_proba(self, changes_df: pd.DataFrame) -> np.ndarray:
        """Probability that each change is defect-inducing (1-D array)."""
        df = self._frame(changes_df)
        if df.empty:
            return np.zeros(0)
        return np.asarray(self.estimator.predict_proba(df)[:, 1], dtype=float)

    def contributions(self, changes_df: pd.DataFrame) -> pd.DataFrame:
        """Per-row, per-raw-feature contribution to the log-odds of a defect.

        Linear models: Platt slope x coefficient x standardised transformed value (relative
        to the training mean). Other models: the change in predicted log-odds when that one
        feature is replaced by its training median (one feature at a time).
        """
        df = self._frame(changes_df)
        if df.empty:
            return pd.DataFrame(columns=self.features)
        lin = linear_contributions(self.estimator, df)
        if lin is not None:
            tokens_ref = (self.info.reference or {}).get("code_tokens")
            if "code_tokens" in lin.columns and tokens_ref is not None:
                lin["code_tokens"] -= float(tokens_ref)  # relative to a typical training change
            return lin[[c for c in self.features if c in lin.columns]]
        reference = self.info.reference or {}
        ref = {c: float(reference.get(c, 0.0)) for c in self.features}
        return replacement_contributions(lambda X: self.estimator.predict_proba(X)[:, 1], df, ref)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path} is missing", hint=_FIX) from None
    except (OSError, ValueError) as err:
        raise ModelError(f"{path} is corrupt ({err})", hint=_FIX) from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is corrupt (not a JSON object)", hint=_FIX)
    return data


def _major_minor(v: str) -> tuple[str, ...]:
    return tuple(str(v).split(".")[:2])


def load_from_bytes(
    model_bytes: bytes | None,
    metadata: dict[str, Any],
    origin: str,
    *,
    source: str,
    path: Path | None = None,
    hint: str | None = None,
) -> LoadedModel:
    """Check hash and versions, then skops-load (shared by repository and bundled models).
    ``hint``: what to do when it fails (default: by ``source``)."""
    fix = hint or (_BUNDLED_FIX if source == "bundled" else _FIX)
    if model_bytes is None:
        raise ModelError(f"{origin} is missing", hint=fix)
    md = ModelMetadata.from_dict(metadata)
    want = md.sha256
    got = sha256_bytes(model_bytes)
    if not want:
        raise ModelError(f"{origin}: metadata.json records no sha256", hint=fix)
    if got != want:
        raise ModelError(
            f"{origin} does not match the sha256 recorded in metadata.json (tampered with or damaged): "
            f"expected {want[:16]}..., found {got[:16]}...",
            hint=fix,
        )
    notes = []
    recorded = (md.libraries or {}).get("sklearn")
    installed = library_versions()["sklearn"]
    if recorded and _major_minor(recorded) != _major_minor(installed):
        notes.append(
            f"model {md.version} was trained with scikit-learn {recorded}, "
            f"installed is {installed}; predictions may differ: retrain with `diffrisk train`"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = loads_model(model_bytes, origin, fix)
    except ModelError as err:
        if notes:
            raise ModelError(f"{err.message}; {notes[0]}", hint=err.hint) from None
        raise
    for n in notes:
        warnings.warn(n, stacklevel=3)
    if source == "repository" and md.bundled_origin:
        # the bundled model, chosen for this repository by its evaluation (not trained on it)
        source = "bundled-chosen"
    return LoadedModel(str(md.version or ""), metadata, est, source, path, notes)


class ModelRegistry:
    """The models of one repository (``DATA_DIR/models``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- state -------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        """registry.json; a damaged one is moved aside and rebuilt, a deleted one rebuilt
        (:meth:`_rebuild`), each with a notice. Names that are not versions are refused."""
        p = self.root / STATE_FILE
        try:
            st = json.loads(p.read_bytes())
            if not isinstance(st, dict):
                raise ValueError("not a JSON object")
            st.setdefault("current", None)
            st.setdefault("history", [])
            if not isinstance(st["current"], str | None) or not (
                isinstance(st["history"], list) and all(isinstance(h, str) for h in st["history"])
            ):
                raise ValueError("current is not a name or history not a list of names")
        except FileNotFoundError:
            return self._rebuild(None) if self.versions() else {"current": None, "history": []}
        except OSError as err:
            raise ModelError(
                f"cannot read {p}: {err.strerror}", hint="check the file's permissions"
            ) from None
        except ValueError as err:  # JSON, UTF-8 or shape
            return self._rebuild(str(err))
        for v in [st["current"], *st["history"]]:
            if v is not None and not self._plain(v):
                raise ModelError(
                    f"{p} names {v!r} as a model version: not a plain version name in {self.root}",
                    hint=f"delete {p}: diffrisk rebuilds it from the versions in {self.root}",
                )
        return st

    def _rebuild(self, damage: str | None) -> dict[str, Any]:
        """registry.json from the versions that load and verify (the newest is current),
        after moving a damaged one (``damage`` says how) aside; says what it did."""
        p = self.root / STATE_FILE
        ok = [v for v in self.versions() if self._verifies(v)]
        st = {"current": ok[-1] if ok else None, "history": ok}
        was = f"was damaged ({damage})" if damage else "was missing"
        if ok:
            what = (
                f"rebuilt it from the {len(ok)} model versions that load; current: {ok[-1]} "
                "(the newest; `diffrisk models promote VERSION` picks another)"
            )
        else:
            what = (
                f"rebuilt it empty, as no model version in {self.root} loads: scoring uses the "
                "bundled model until `diffrisk train`"
            )
        try:
            moved = f"moved it to {set_aside(p).name}; " if damage else ""
            self._write_state(st)
        except OSError as err:  # a read-only data directory: this run uses the rebuilt state
            notice(f"{p} {was} and cannot be repaired here ({err.strerror}); for this run: {what}")
            return st
        notice(f"{p} {was}: {moved}{what}")
        return st

    def _verifies(self, version: str) -> bool:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._load(version, _FIX)
        except ModelError:
            return False
        return True

    def _plain(self, name: object) -> bool:
        """``name`` is a plain version name that stays right under ``root`` (no path, no
        symbolic link that leads elsewhere)."""
        if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
            return False
        return (self.root / name).resolve().parent == self.root.resolve()

    def _write_state(self, st: dict[str, Any]) -> None:
        atomic_write_bytes(self.root / STATE_FILE, json.dumps(st, indent=2).encode())

    def current(self) -> str | None:
        return self._state().get("current")

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and (p / METADATA_FILE).exists() and self._plain(p.name)
        )

    def metadata(self, version: str) -> dict[str, Any]:
        if not self._plain(version):
            raise ModelError(
                f"{version!r} is not a model version name (a plain name in {self.root})",
                hint=f"known versions: {', '.join(self.versions()) or 'none'}",
            )
        d = self.root / version
        if not d.is_dir():
            known = ", ".join(self.versions()) or "none"
            raise ModelError(
                f"no model version {version!r} in {self.root}", hint=f"known versions: {known}"
            )
        return _read_json(d / METADATA_FILE)

    def list(self) -> list[dict[str, Any]]:
        """Metadata of every version (oldest first), with ``current`` set on the current one."""
        cur = self.current()
        out = []
        for v in self.versions():
            try:
                md = self.metadata(v)
            except ModelError as err:
                md = {"version": v, "error": err.message}
            md["current"] = v == cur
            out.append(md)
        return out

    # -- save / load ---------------------------------------------------------------------
    def _new_version(self, kind: str, created: datetime) -> str:
        base = f"{created:%Y%m%dT%H%M%SZ}-{kind}"
        v, n = base, 2
        while (self.root / v).exists():
            v, n = f"{base}-{n}", n + 1
        return v

    def save(
        self, estimator: Any, metadata: ModelMetadata | dict[str, Any], card: str | None = None
    ) -> str:
        """Store a fitted estimator as a new version (not promoted); returns the version."""
        created = datetime.now(timezone.utc).replace(microsecond=0)
        if not isinstance(metadata, ModelMetadata):
            metadata = ModelMetadata.from_dict(metadata)
        kind = str(metadata.kind) if "kind" in metadata.keys else "model"
        if metadata.bundled_origin:
            kind = "bundled"  # a copy of the bundled model: named for what it is
        if not (self.root / STATE_FILE).exists():
            # written before the first version: from then on a missing file was deleted
            self._write_state(self._state())
        version = self._new_version(kind, created)
        data = dumps_model(estimator)
        md = metadata.saved(
            version=version,
            created=created,
            model_file=MODEL_FILE,
            sha256=sha256_bytes(data),
            libraries=library_versions(),
        ).to_dict()
        d = self.root / version
        d.mkdir(parents=True, exist_ok=False)
        atomic_write_bytes(d / MODEL_FILE, data)
        atomic_write_bytes(d / CARD_FILE, (card or model_card(md)).encode())
        # metadata.json last: a version without it is not listed.
        atomic_write_bytes(d / METADATA_FILE, json.dumps(_jsonable(md), indent=2).encode())
        return version

    def load(self, version: str | None = None) -> LoadedModel:
        v = version or self.current()
        if v is None:
            raise ModelError(f"no current model in {self.root}", hint="run `diffrisk train`")
        st = self._state()
        earlier = [h for h in st["history"] if h != v and (self.root / h / METADATA_FILE).exists()]
        return self._load(v, repair_hint(self.root, can_roll_back=bool(earlier)))

    def _load(self, v: str, fix: str) -> LoadedModel:
        try:
            md = self.metadata(v)
        except ModelError as err:
            raise ModelError(err.message, hint=fix) from None
        name = md.get("model_file", MODEL_FILE)
        if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
            raise ModelError(
                f"{self.root / v / METADATA_FILE} names {name!r} as its model file: not a "
                "plain file name in the version's directory",
                hint=fix,
            )
        path = self.root / v / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"model file {path} is missing", hint=fix) from None
        return load_from_bytes(data, md, str(path), source="repository", path=path, hint=fix)

    # -- promotion -----------------------------------------------------------------------
    def promote(self, version: str) -> None:
        self.metadata(version)  # exists and readable
        st = self._state()
        if st["current"] == version:
            return
        st["history"] = [*(h for h in st["history"] if h != version), version]
        st["current"] = version
        self._write_state(st)

    def rollback(self) -> str:
        """Make the previously promoted version current again; returns it."""
        st = self._state()
        hist = list(st["history"])
        if st["current"] in hist:
            hist.remove(st["current"])
        hist = [h for h in hist if (self.root / h / METADATA_FILE).exists()]
        if not hist:
            raise ModelError(
                "there is no earlier promoted model to roll back to",
                hint="see `diffrisk models list`",
            )
        st["current"] = hist[-1]
        st["history"] = hist
        self._write_state(st)
        return hist[-1]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, pd.Timestamp | datetime):
        return obj.isoformat()
    return obj


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def model_card(md: dict[str, Any]) -> str:
    """A short Markdown model card from the metadata."""
    # a bundled model registered for a repository keeps its own window under another key
    w = md.get("training_window") or md.get("bundled_training_window") or {}
    m = md.get("metrics") or {}
    lines = [
        f"# diffrisk model {md.get('version', '')}",
        "",
        f"- kind: `{md.get('kind')}`; features: {', '.join(f'`{f}`' for f in md.get('features', []))}",
        f"- trained on {md.get('n_train', '?')} labelled changes ({md.get('n_buggy', '?')} defect-inducing)"
        + (
            f", {w.get('first_date', '?')} ({str(w.get('first_sha', ''))[:12]}) to "
            f"{w.get('last_date', '?')} ({str(w.get('last_sha', ''))[:12]})"
            if w
            else ""
        ),
        f"- repository HEAD: {md.get('repository_head', '?')}",
        f"- libraries: {', '.join(f'{k} {v}' for k, v in (md.get('libraries') or {}).items())}",
    ]
    origin = md.get("origin") or {}
    if origin.get("bundled"):
        lines.append(
            f"- origin: the bundled cross-project model `{origin['bundled']}` (trained on "
            f"{', '.join(origin.get('projects') or []) or 'public projects'}), chosen because it "
            "ranked best in this repository's time-ordered evaluation; not trained on this repository"
        )
    prior = md.get("prior") or {}
    if prior.get("bundled"):
        lines.append(
            f"- starts from the bundled cross-project model `{prior['bundled']}` (its log-odds "
            "as an offset, its base rate kept)"
            + (
                f", re-ranked by weights for the tokens of the added code learnt here "
                f"(penalty C = {prior['penalty']})"
                if prior.get("penalty")
                else "; too few labelled changes for token weights: the bundled model itself"
            )
        )
    if md.get("vendored"):
        lines.append(
            "- vendored directories left out of labels and features: "
            + ", ".join(f"`{d}`" for d in md["vendored"])
        )
    lines += [
        "",
        "## Time-ordered evaluation (labelable changes, mean over folds)",
        "",
    ]
    if m:
        lines += ["| metric | model | lines-added baseline |", "| --- | --- | --- |"]
        base = m.get("baseline") or {}
        for key in (
            "roc_auc",
            "pr_auc",
            "f1",
            "mcc",
            "brier",
            "recall_at_20_effort",
            "effort_at_20_recall",
            "popt",
            "ifa",
        ):
            if key in (m.get("overall") or {}):
                lines.append(f"| {key} | {_fmt(m['overall'][key])} | {_fmt(base.get(key, ''))} |")
        if m.get("statement"):
            lines += ["", str(m["statement"])]
    else:
        lines.append("(no evaluation recorded)")
    lines += [
        "",
        "## Intended use and limits",
        "",
        "Ranks changes by the probability that a later bug fix will blame them (SZZ labels).",
        "Labels are noisy (SZZ misses and mislinks fixes); scores are a review aid, not a verdict.",
        "The model is only as current as its training window: retrain when `diffrisk monitor` reports drift.",
        "",
    ]
    return "\n".join(lines)


# -- bundled model ---------------------------------------------------------------------------


def bundled_files() -> tuple[bytes | None, dict[str, Any], str]:
    root = resources.files("diffrisk") / "bundled"
    md_res = root / METADATA_FILE
    origin = f"bundled model ({root})"
    try:
        md = json.loads(md_res.read_text())
    except FileNotFoundError:
        raise ModelError(
            "the bundled model is missing from this installation of diffrisk",
            hint="reinstall diffrisk, or train a model for this repository with `diffrisk train`",
        ) from None
    except ValueError as err:
        raise ModelError(
            f"the bundled model's metadata.json is corrupt ({err})", hint="reinstall diffrisk"
        ) from None
    name = md.get("model_file", MODEL_FILE) if isinstance(md, dict) else None
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        raise ModelError(
            f"the bundled model's metadata.json names {name!r} as its model file",
            hint=_BUNDLED_FIX,
        )
    try:
        data = (root / name).read_bytes()
    except FileNotFoundError:
        data = None
    return data, md, origin


def load_bundled() -> LoadedModel:
    data, md, origin = bundled_files()
    return load_from_bytes(data, md, origin, source="bundled")


def _bundled_prior() -> Any:
    """The bundled model's estimator, the ``prior`` kind's default starting model."""
    try:
        return load_bundled().estimator
    except ModelError as err:
        raise DataError(
            f"the prior model starts from the bundled model, which cannot be loaded "
            f"({err.message})",
            hint="with model auto the other candidates still compete; " + (err.hint or ""),
        ) from None


estimators.default_prior_loader = _bundled_prior


def load_model(data_dir: str | Path) -> LoadedModel:
    """The repository's current model, else the bundled cross-project one (see ``.source``)."""
    reg = ModelRegistry(models_dir(data_dir))
    if reg.current() is not None:
        return reg.load()
    return load_bundled()
