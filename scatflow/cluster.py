"""Where the tasks run: a local Dask cluster (default) or a running scheduler.

Each kind is one small function in :data:`KINDS`; the CLI and the workflow
only see a ``distributed.Client``.
"""

from __future__ import annotations

import contextlib
import typing as T

from .kernel import default_threads


def _local(cfg: dict, log):
    from distributed import Client, LocalCluster

    workers = cfg.get("workers") or default_threads()
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=cfg.get("threads_per_worker") or 1,
        processes=True,
        memory_limit=cfg.get("memory_limit") or "auto",
        # The scheduler runs whatever its clients send: never listen beyond this machine by default.
        host="127.0.0.1",
        dashboard_address="127.0.0.1:8787" if cfg.get("dashboard", True) else None,
        silence_logs=40,
    )
    client = Client(cluster)
    if cfg.get("dashboard", True) and client.dashboard_link:
        log(f"dashboard: {client.dashboard_link}")
    log(f"local cluster: {workers} worker process(es) x {cfg.get('threads_per_worker') or 1} thread(s)")
    return client, cluster


def _address(cfg: dict, log):
    from distributed import Client

    client = Client(cfg["kind"], timeout="30s")
    log(f"connected to scheduler {cfg['kind']} ({len(client.nthreads())} worker(s))")
    if client.dashboard_link:
        log(f"dashboard: {client.dashboard_link}")
    return client, None


KINDS: dict[str, T.Callable] = {"local": _local}


@contextlib.contextmanager
def connect(cfg: dict, log=print):
    """A ``distributed.Client`` for the ``[cluster]`` config section, closed on exit."""
    kind = cfg.get("kind", "local")
    factory = KINDS.get(kind, _address if "://" in kind else None)
    if factory is None:
        raise ValueError(f"cluster.kind: unknown kind {kind!r}")
    client, cluster = factory(cfg, log)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
