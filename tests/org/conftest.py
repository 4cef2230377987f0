from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Dask cluster of two worker processes (one thread each) for a test module; its
    scheduler's address, as ``diffrisk org --scheduler`` takes it."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set(
            {"distributed.scheduler.allowed-failures": 3, "distributed.worker.daemon": False}
        ),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,
        ) as c,
    ):
        yield c.scheduler_address
