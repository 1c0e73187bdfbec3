"""Where the tasks run: a local Dask cluster (default), a running scheduler, or worker
jobs on SLURM, PBS or SGE through dask-jobqueue.

Each kind is one entry of :data:`KINDS`, a function that starts it and returns a
:class:`Cluster` handle; the run only sees that handle. Job-scheduler settings left unset in the config keep
the defaults of dask's ``jobqueue.yaml`` (``deploy/jobqueue.yaml`` is a ready one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import typing as T

from ..config import thaw
from ..errors import ConfigError


def _nothing() -> None:
    return None


@dataclasses.dataclass
class Cluster:
    """A running cluster as the run sees it.

    Attributes
    ----------
    client : distributed.Client
    slots : int
        Task slots expected (workers x threads), to bound the tasks in flight.
    wait_ready : callable
        Blocks until the cluster can run tasks; raises ConfigError naming why not.
    cluster : object or None
        The cluster object we started (None when joining a running scheduler).
    cleanup : callable
        Run after the cluster is closed (removes temporary certificates).
    """

    client: T.Any
    slots: int
    wait_ready: T.Callable[[], None] = _nothing
    cluster: T.Any = None
    cleanup: T.Callable[[], None] = _nothing

    def close(self) -> None:
        """Close the client, then the cluster we started, then clean up."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cleanup()

# [cluster] keys passed straight to dask-jobqueue when set.
JOB_KEYS = (
    "queue", "account", "walltime", "cores", "memory", "processes", "interface",
    "job_extra_directives", "job_script_prologue", "local_directory", "log_directory",
)


#: Job settings used when neither the config nor jobqueue.yaml gives them: one single-threaded
#: worker per job (the kernel runs one thread per task) and memory for it. A worker's peak was
#: 0.29 GB on the tutorial network for 1 to 7-day spans (benchmarks/archive.py); 2 GB leaves room
#: for larger networks and blocks. `scatflow run --dry-run` prints the job script with them.
JOB_DEFAULTS = {"cores": 1, "processes": 1, "memory": "2GB"}


#: glibc's trim threshold for local worker processes, bytes. Dask sets 64 KiB so that workers hand
#: freed memory back at once; with it, a worker that has just preprocessed a block (arrays of a
#: million samples, made and freed) shrinks and regrows its heap through the kernel's small
#: allocations: about 1.4 M page faults and +20 % kernel time per block, measured
#: (benchmarks/profile.py). 128 MiB keeps that churn in the heap and left the peak RSS unchanged.
WORKER_TRIM_BYTES = 128 << 20


def _worker_trim() -> None:
    """Raise Dask's default trim threshold for the worker processes this process spawns (a value
    the user set, in Dask's config or in ``MALLOC_TRIM_THRESHOLD_``, is kept)."""
    import dask

    key = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ and dask.config.get(key, None) in (65536, "65536"):
        dask.config.set({key: WORKER_TRIM_BYTES})


def _local(cfg: dict, log):
    from distributed import Client, LocalCluster

    from ..scattering.kernel import default_threads

    _worker_trim()  # read by each nanny when it is made, before its worker process starts

    workers = cfg.get("workers") or default_threads()
    threads = cfg.get("threads_per_worker") or 1
    cluster = LocalCluster(
        # No worker yet: the scheduler is up at once, and scale() below starts the worker
        # processes in the background (~1.5 s of imports each) while the driver plans and
        # prepares the store; the run waits for them only when it submits (see ready()).
        n_workers=0,
        threads_per_worker=threads,
        processes=True,
        memory_limit=cfg.get("memory_limit") or "auto",
        # The scheduler runs whatever its clients send: never listen beyond this machine by default.
        host="127.0.0.1",
        dashboard_address="127.0.0.1:8787" if cfg.get("dashboard", True) else None,
        # Without a dashboard the scheduler still serves its health routes over HTTP, on port
        # 8787 unless told otherwise: a free loopback port then, never another run's port.
        scheduler_kwargs=None if cfg.get("dashboard", True) else {"dashboard_address": "127.0.0.1:0"},
        silence_logs=40,
        # Filters distributed's benign shutdown races out of the workers' stderr (see _workerlog).
        preload=["scatflow.workflow._workerlog"],
    )
    client = Client(cluster)
    # After the client: a Client created while workers are starting waits for them.
    cluster.scale(workers)
    if cfg.get("dashboard", True) and client.dashboard_link:
        log(f"dashboard: {client.dashboard_link}")
    log(f"local cluster: {workers} worker process(es) x {threads} thread(s)")
    return Cluster(client, workers * threads, lambda: _wait_local_workers(client, workers), cluster)


#: Seconds a local run waits for its first worker process before giving up.
LOCAL_START_TIMEOUT = 120


def _wait_local_workers(client, workers: int) -> None:
    try:
        client.wait_for_workers(1, timeout=LOCAL_START_TIMEOUT)
    except TimeoutError:
        raise ConfigError(
            f"cluster: none of the {workers} local worker process(es) started within "
            f"{LOCAL_START_TIMEOUT} s; their errors are logged above"
        ) from None


def _address(cfg: dict, log):
    from distributed import Client

    client = Client(cfg["kind"], timeout="30s")
    log(f"connected to scheduler {cfg['kind']} ({len(client.nthreads())} worker(s))")
    if client.dashboard_link:
        log(f"dashboard: {client.dashboard_link}")
    return Cluster(client, max(1, sum(client.nthreads().values())))


def job_cluster(cfg: dict, tls_dir: str | None = None):
    """A dask-jobqueue cluster object for ``cfg['kind']`` (no job submitted yet).

    ``tls_dir`` is where the temporary certificate files for the workers go: a
    directory on a file system the compute nodes share, removed by the caller.
    """
    try:
        import dask_jobqueue
    except ImportError:
        raise ConfigError(f"cluster.kind = {cfg['kind']!r} needs dask-jobqueue: pip install 'scatflow[hpc]'") from None
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster, "sge": dask_jobqueue.SGECluster}[
        cfg["kind"]
    ]
    kwargs = {k: thaw(cfg[k]) for k in JOB_KEYS if cfg.get(k) is not None}
    import dask

    for key, default in JOB_DEFAULTS.items():
        # Neither the config nor jobqueue.yaml says: dask-jobqueue would refuse with a long message.
        if key not in kwargs and dask.config.get(f"jobqueue.{cfg['kind']}.{key}", None) is None:
            kwargs[key] = default
    # The workers' trim threshold (see WORKER_TRIM_BYTES): a job's nanny passes the variable on to
    # its worker process; one the site or the user sets first is kept.
    prologue = kwargs.get("job_script_prologue") or dask.config.get(f"jobqueue.{cfg['kind']}.job-script-prologue", None)
    kwargs["job_script_prologue"] = list(prologue or []) + [
        f"export MALLOC_TRIM_THRESHOLD_=${{MALLOC_TRIM_THRESHOLD_:-{WORKER_TRIM_BYTES}}}"]
    if cfg.get("lifetime"):
        # Retire before the walltime kills the job; adapt() below submits the replacements.
        # No --lifetime-restart: that restarts inside the same job, which still hits its walltime.
        kwargs["worker_extra_args"] = ["--lifetime", cfg["lifetime"], "--lifetime-stagger", cfg["lifetime_stagger"]]
    if cfg.get("tls", True):
        from distributed.security import Security

        try:
            kwargs["security"] = Security.temporary()
        except ImportError:
            raise ConfigError("cluster.tls needs the 'cryptography' package: pip install 'scatflow[hpc]'") from None
        kwargs["shared_temp_directory"] = tls_dir or os.getcwd()
    kwargs.setdefault("name", "scatflow-worker")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cluster: {exc}") from None


def _tls_dir() -> str:
    # Workers read the temporary certificate from files: a private directory in the driver's
    # working directory, which must be on a file system the compute nodes share (as the store is).
    return tempfile.mkdtemp(prefix=".scatflow-tls-", dir=os.getcwd())


def _remove_tls(cluster, tls_dir: str) -> None:
    # dask-jobqueue keeps the certificate files open as NamedTemporaryFile objects on the
    # cluster (deleted when collected); close them now so no private key outlives the run.
    for key in ("ca_file", "cert", "key"):
        handle = getattr(cluster, f"_job_{key}", None)
        if handle is not None:
            handle.close()
    shutil.rmtree(tls_dir, ignore_errors=True)


def _jobs(cfg: dict, log):
    from distributed import Client

    tls_dir = _tls_dir()
    cluster = job_cluster(cfg, tls_dir)
    lo, hi = cfg.get("minimum_jobs"), cfg.get("maximum_jobs")
    if lo is not None or hi is not None:
        cluster.adapt(minimum_jobs=lo or 0, maximum_jobs=hi or max(lo or 1, 1))
        expected = hi or lo or 1
    elif cfg.get("lifetime"):
        cluster.adapt(minimum_jobs=cfg["jobs"], maximum_jobs=cfg["jobs"])
        expected = cfg["jobs"]
    else:
        cluster.scale(jobs=cfg["jobs"])
        expected = cfg["jobs"]
    client = Client(cluster, security=cluster.security)
    log(f"{cfg['kind']} cluster: up to {expected} worker job(s); scheduler {cluster.scheduler_address}")
    if client.dashboard_link:
        log(f"dashboard: {client.dashboard_link}")
    log("waiting for the first worker job to start...")
    client.wait_for_workers(1)
    slots = expected * (cfg.get("cores") or max(1, sum(client.nthreads().values())))
    return Cluster(client, slots, cluster=cluster, cleanup=lambda: _remove_tls(cluster, tls_dir))


KINDS: dict[str, T.Callable[..., Cluster]] = {"local": _local, "slurm": _jobs, "pbs": _jobs, "sge": _jobs}


@contextlib.contextmanager
def connect(cfg: T.Mapping, log=print) -> T.Iterator[Cluster]:
    """Start (or join) the cluster of the ``[cluster]`` config section; closed on exit.

    Yields
    ------
    Cluster
        The client, its task slots and a readiness wait.
    """
    kind = cfg.get("kind", "local")
    factory = KINDS.get(kind, _address if "://" in kind else None)
    if factory is None:
        raise ConfigError(f"cluster.kind: unknown kind {kind!r}")
    handle = factory(cfg, log)
    try:
        yield handle
    finally:
        handle.close()


@contextlib.contextmanager
def on_demand(cfg: T.Mapping, log=print) -> T.Iterator[T.Callable[[], Cluster]]:
    """The cluster of the ``[cluster]`` config section, started when first asked for; closed
    on exit when it was started.

    A job-scheduler cluster (SLURM, PBS, SGE) or a running scheduler is started or joined only
    when the returned function is first called: a run that has planned nothing to compute
    submits no job and holds no worker. A local cluster starts at once, as it costs nothing
    queued: its worker processes start in the background while the driver plans.

    Yields
    ------
    callable
        ``start()``: the :class:`Cluster` (started on the first call, the same one after).
    """
    with contextlib.ExitStack() as stack:
        started: list[Cluster] = []

        def start() -> Cluster:
            if not started:
                started.append(stack.enter_context(connect(cfg, log)))
            return started[0]

        if cfg.get("kind", "local") == "local":
            start()
        yield start


def job_script(cfg: dict) -> str | None:
    """The job script a job-scheduler cluster would submit (None for other kinds)."""
    if cfg.get("kind") not in ("slurm", "pbs", "sge"):
        return None
    tls_dir = _tls_dir()
    try:
        cluster = job_cluster(cfg, tls_dir)
        try:
            return cluster.job_script()
        finally:
            cluster.close()
            _remove_tls(cluster, tls_dir)
    finally:
        shutil.rmtree(tls_dir, ignore_errors=True)
