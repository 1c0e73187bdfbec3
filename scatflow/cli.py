"""The ``scatflow`` command: example, run, info, plot, analyze, export, upgrade.

Errors print one line naming the file, key or channel at fault and exit with
status 2 (1 when blocks failed); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import __version__


class Progress:
    """A one-line progress bar on stderr (a line per 10 % when not a terminal)."""

    def __init__(self, stream=sys.stderr, enabled: bool = True):
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.t0 = time.perf_counter()
        self.last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total == 0:
            return
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (total - done) if done else float("nan")
        width = 30
        fill = int(width * done / total)
        line = f"[{'#' * fill}{'.' * (width - fill)}] {done}/{total} blocks, {elapsed:.0f} s elapsed"
        if done and done < total:
            line += f", ~{eta:.0f} s left"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done == total else ""))
            self.stream.flush()
        else:
            decile = 10 * done // total
            if decile != self.last_decile:
                self.last_decile = decile
                self.stream.write(line + "\n")
                self.stream.flush()


def _log(quiet: bool):
    def log(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    return log


# -- example ------------------------------------------------------------------------------------
def cmd_example(args) -> int:
    from obspy import UTCDateTime

    from . import synthetic

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    log = _log(args.quiet)
    start = UTCDateTime(args.start)
    if args.archive:
        info = synthetic.write_archive(out / "archive", start=str(start.date), days=args.days)
        synthetic.write_inventory(out / "archive" / "stations.xml", info["stations"], start=str(start.date))
        end = UTCDateTime(info["end"])
        (out / "archive.toml").write_text(synthetic.ARCHIVE_CONFIG.format(start=_iso(start), end=_iso(end), store="archive.zarr"))
        (out / "archive.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
        log(f"wrote an SDS archive ({len(info['stations'])} stations, {args.days} days) and {out / 'archive.toml'}")
        return 0
    data = out / "data"
    data.mkdir(exist_ok=True)
    rate = 50.0
    # One day plus the next midnight's sample, as a data centre returns an inclusive end time:
    # then ObsPy's Stream.slide(40, 20) gives the tutorial's 4319 windows.
    path = synthetic.write_day(data / f"X9.SV13..HH.{start.strftime('%Y.%j')}.mseed", start=_iso(start),
                             sampling_rate=rate, duration_s=86400 + 1 / rate)
    end = start + 86400
    (out / "config.toml").write_text(
        synthetic.EXAMPLE_CONFIG.format(data=f"data/{path.name}", start=_iso(start), end=_iso(end), store="results.zarr")
    )
    log(f"wrote {path} and {out / 'config.toml'}")
    log(f"next: scatflow run {out / 'config.toml'}")
    return 0


def _iso(t) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


# -- run ------------------------------------------------------------------------------------------
def _cluster_overrides(kind: str | None, workers: int | None) -> dict:
    """The ``[cluster]`` keys set by ``--cluster``/``--scheduler`` and ``--workers``."""
    from .errors import ConfigError

    if workers is not None and workers < 1:
        # Checked here, not by the config's rule, so the line names the option the user typed.
        raise ConfigError(f"--workers must be at least 1 (local worker processes), got {workers}")
    return {"cluster": {k: v for k, v in (("kind", kind), ("workers", workers)) if v is not None}}


def cmd_run(args) -> int:
    from .workflow import cluster
    from .config import load_config

    from .errors import ConfigError

    if args.cluster and args.scheduler:
        raise ConfigError(f"give --cluster ({args.cluster}) or --scheduler ({args.scheduler}), not both")
    cfg = load_config(args.config, _cluster_overrides(args.cluster or args.scheduler, args.workers))
    log = _log(args.quiet)
    # Store and design are checked before any cluster starts (a job cluster may take minutes).
    from .store.lock import writer_lock
    from .workflow.run import preflight

    store = preflight(cfg, overwrite=args.overwrite)
    if args.dry_run:
        from .workflow.plan import make_plan

        plan = make_plan(cfg, store, fresh=args.overwrite, recheck_all=args.recheck_all)
        print(f"plan: {plan.tasks} block(s) to compute into {cfg.output['store']}")
        print(plan.describe())
        script = cluster.job_script(cfg.cluster)
        if script:
            print(f"\njob script each {cfg.cluster['kind']} worker job would run (not submitted):\n{script}")
        return 0
    # The run plans first and asks for the cluster only when there is a block to compute: a
    # night with nothing new submits no worker job.
    with writer_lock(store.path), cluster.on_demand(cfg.cluster, log=log) as start_cluster:
        from .workflow.run import run

        summary = run(cfg, start_cluster, overwrite=args.overwrite, progress=Progress(enabled=not args.quiet),
                      log=log, recheck_all=args.recheck_all)
    print(summary.text())
    print(f"store: {cfg.output['store']}")
    return 0 if summary.ok else 1


# -- info -----------------------------------------------------------------------------------------
def _store_of(arg: str) -> str:
    """The store a user named: a store path, or a run config (``.toml``) whose ``output.store`` it is."""
    import os

    if arg.endswith(".toml") and os.path.isfile(arg):
        from .config import load_config

        return load_config(arg).output["store"]
    return arg


def cmd_info(args) -> int:
    from .report import store_report

    print(store_report(_store_of(args.store)))
    return 0


# -- plot -----------------------------------------------------------------------------------------
def cmd_plot(args) -> int:
    args.store = _store_of(args.store)
    if args.analysis:
        from .analysis.plot import plot_analysis

        for path in plot_analysis(args.store, args.analysis, output=args.output, station=args.station,
                                  start=args.start, end=args.end):
            print(f"wrote {path}")
        return 0
    from .plot import plot_store

    path = plot_store(args.store, output=args.output, station=args.station, channel=args.channel, f1=args.f1,
                      start=args.start, end=args.end)
    print(f"wrote {path}")
    return 0


# -- analyze / export -------------------------------------------------------------------------------
def cmd_analyze(args) -> int:
    from .workflow import cluster
    from .analysis.analyze import parse_explore
    from .config import load_config

    cfg = load_config(args.config, _cluster_overrides(args.scheduler, args.workers))
    log = _log(args.quiet)
    explore = parse_explore(args.explore) if args.explore else None
    from .analysis.analyze import preflight

    preflight(cfg, refit=args.refit, explore=explore)  # bad input: one line before any cluster starts
    if explore is None:
        from .store.lock import check_free

        check_free(cfg.output["store"], "analyze")  # a run writing the store: refused before a cluster starts
    with cluster.connect(cfg.cluster, log=log):
        from .analysis.analyze import analyze

        result = analyze(cfg, refit=args.refit, explore=explore, log=log)
    if explore is not None:
        from .analysis.plot import explore_output, plot_explore

        for key, scores in result.items():
            where = f" ({key})" if key else ""
            print(f"explained variance of the reconstruction{where}: "
                  + ", ".join(f"{c}: {100 * v:.2f} %" for c, v in scores.items()))
        out = args.output or explore_output(cfg.output["store"], cfg.analysis["name"])
        print(f"wrote {plot_explore(result, out)}")
        return 0
    print(result.text())
    return 0


def cmd_export(args) -> int:
    from .analysis.export import export_analysis

    path, rows = export_analysis(_store_of(args.store), args.analysis, args.output)
    print(f"wrote {rows} rows to {path}")
    return 0


# -- upgrade ----------------------------------------------------------------------------------------
def cmd_upgrade(args) -> int:
    from .store.upgrade import upgrade

    print(upgrade(_store_of(args.store), log=_log(args.quiet)).text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``scatflow`` argument parser: one subcommand per verb (example, run, info, plot, analyze,
    export, upgrade), each with its options and help; ``func`` of the parsed arguments runs the verb."""
    p = argparse.ArgumentParser(prog="scatflow", description="Scattering-network features from seismic archives.")
    p.add_argument("--version", action="version", version=f"scatflow {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("example", help="write example data and ready-to-run configs into DIR")
    e.add_argument("dir")
    e.add_argument("--archive", action="store_true", help="a small multi-station SDS archive instead of one day")
    e.add_argument("--days", type=int, default=3, help="days in the archive (default 3)")
    e.add_argument("--start", default="2015-12-04", help="first day (UTC)")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_example)

    r = sub.add_parser("run", help="run the workflow described by CONFIG.toml")
    r.add_argument("config")
    r.add_argument("--cluster", help="override cluster.kind: local, slurm, pbs, sge or a scheduler address")
    r.add_argument("--scheduler", help="join a running Dask scheduler at ADDRESS")
    r.add_argument("--workers", type=int, help="local: number of worker processes")
    r.add_argument("--overwrite", action="store_true", help="delete the store and recompute everything")
    r.add_argument("--recheck-all", action="store_true",
                   help="also compare the content of every file done blocks read with the hash they recorded "
                        "(finds rewrites that kept size and mtime; reads every recorded file once)")
    r.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    r.add_argument("--quiet", action="store_true", help="no progress or log lines")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("info", help="stations, channels, span, coverage and design of a store")
    i.add_argument("store", help="the store, or the run config (.toml) naming it in output.store")
    i.set_defaults(func=cmd_info)

    g = sub.add_parser("plot", help="write a PNG: first-order scalogram and second-order coefficients")
    g.add_argument("store", help="the store, or the run config (.toml) naming it in output.store")
    g.add_argument("-o", "--output", help="PNG path (default: STORE.<station>.png beside the store)")
    g.add_argument("--station", help="group NET.STA.LOC (default: the first)")
    g.add_argument("--channel", help="SEED id (default: the first)")
    g.add_argument("--f1", type=float, help="first-order frequency (Hz) for the second-order panel")
    g.add_argument("--start", help="UTC start of the time range shown")
    g.add_argument("--end", help="UTC end of the time range shown")
    g.add_argument("--analysis", metavar="NAME",
                   help="draw analysis NAME instead: cluster rates, centroids, unmixing weights (two PNGs)")
    g.set_defaults(func=cmd_plot)

    a = sub.add_parser("analyze", help="independent components and clusters of the store of CONFIG.toml")
    a.add_argument("config")
    a.add_argument("--refit", action="store_true", help="fit the model again and replace analysis/<name>")
    a.add_argument("--explore", metavar="A:B",
                   help="fit FastICA with A..B components on the sample, print and plot the explained "
                        "variance, write nothing to the store")
    a.add_argument("-o", "--output", help="--explore: PNG path (default: beside the store)")
    a.add_argument("--scheduler", help="join a running Dask scheduler at ADDRESS")
    a.add_argument("--workers", type=int, help="local: number of worker processes")
    a.add_argument("--quiet", action="store_true", help="no progress lines")
    a.set_defaults(func=cmd_analyze)

    x = sub.add_parser("export", help="one row per window of an analysis: CSV, or Parquet (.parquet)")
    x.add_argument("store", help="the store, or the run config (.toml) naming it in output.store")
    x.add_argument("--analysis", required=True, metavar="NAME")
    x.add_argument("-o", "--output", required=True, help="output file, .csv or .parquet")
    x.set_defaults(func=cmd_export)

    u = sub.add_parser("upgrade", help="rewrite a store written by scatflow 0.2 in this version's format, in place "
                                       "(safe to interrupt and run again)")
    u.add_argument("store", help="the store, or the run config (.toml) naming it in output.store")
    u.add_argument("--quiet", action="store_true", help="no progress lines")
    u.set_defaults(func=cmd_upgrade)
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system's or a user's ``kill``): stopped as Ctrl-C stops a run."""


def _terminate(signum, frame):
    raise _Terminated()


def main(argv=None) -> int:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    # SIGTERM stops a run as Ctrl-C does; the caller's own handler comes back afterwards (a test
    # runner or a notebook calling main() keeps its behaviour).
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


#: Exception classes (botocore, aiohttp) that mean an object store's server did not answer.
_UNREACHABLE = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ClientConnectorError",
                "ConnectionClosedError", "ServerDisconnectedError"}


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is an object store's server not answering."""
    while exc is not None:
        if any(c.__name__ in _UNREACHABLE for c in type(exc).__mro__):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        return args.func(args)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except BrokenPipeError:
        # `scatflow info STORE | head`: the reader left; nothing to report. Python would complain
        # again when it flushes stdout at exit, so point stdout at /dev/null first.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated) or isinstance(exc.__context__, _Terminated)
        done = getattr(exc, "done", None)
        kept = "completed blocks are kept" if done is None else f"{done} block(s) completed by this run are kept"
        if getattr(exc, "abandoned", 0):
            kept += f" ({exc.abandoned} still in flight were abandoned; any not marked done is computed again)"
        print(f"scatflow: {'terminated' if terminated else 'interrupted'}; {kept}, run again to resume",
              file=sys.stderr)
        return 143 if terminated else 130
    except Exception as exc:  # noqa: BLE001 - one line for users; --debug for the traceback
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        from .errors import USER_ERRORS

        if _unreachable(exc):
            msg = (f"object store did not answer after retries ({type(exc).__name__}: {msg}); no block is "
                   "marked done without its data: run again when it is back")
        elif not isinstance(exc, USER_ERRORS):
            msg = f"{type(exc).__name__}: {msg} (run with --debug for the traceback)"
        print(f"scatflow: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
