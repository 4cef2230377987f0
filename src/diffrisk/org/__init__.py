"""Organisation scale: the pipeline over many repositories at once, on Dask.

``diffrisk org`` reads a manifest of repositories (:mod:`diffrisk.org.manifest`), runs
one coarse task per repository and stage on a Dask cluster (:mod:`diffrisk.org.engine`,
:mod:`diffrisk.org.tasks`: clone or fetch, mine, label), writes every repository's data
directory under one root and a combined dataset partitioned by repository
(:mod:`diffrisk.org.dataset`), trains one model on the pooled repositories
(:mod:`diffrisk.org.model`) and renders one static HTML report (:mod:`diffrisk.org.report`).
:mod:`diffrisk.org.jobs` is what the ``diffrisk org`` commands call. See docs/scale.md.

Dask (``distributed``) is an optional dependency: ``pip install 'diffrisk[org]'``.
"""
