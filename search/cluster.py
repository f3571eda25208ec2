"""Ray for a search: join the user's cluster or start a local one that listens on 127.0.0.1 only,
check before anything starts that a given address answers and that a trial fits on some node,
and stop a running search whose trials no node can hold any more (instead of waiting forever).

A cluster started with `ray start` is the user's to configure (its interfaces, auth, resources):
the search only joins it.
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator

from mlflow_config import environment
from search import private_apis
from search.results.cli_kit import first_line

PROBE_TIMEOUT_S = 3.0  # an address that does not accept a connection by then is reported as down
INFEASIBLE_GRACE_S = 10.0  # how long no node may fit a pending trial before the search stops
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type SETTINGS, no flags, stream 0
# Ray picks the node's external IP (and listens on all interfaces) unless it thinks it cannot form
# a multi-node cluster; with this off, every Ray server of a local instance binds 127.0.0.1.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class ClusterError(Exception):
    """Ray cluster cannot be reached or cannot run the trials; the CLI prints one line, exit 2."""


def given_address(address: str | None) -> str | None:
    """The cluster to join: --address, else RAY_ADDRESS, else None (start a local Ray)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    return None if address == "local" else address


def check_address(address: str | None, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Fail in seconds when the cluster at `address` does not answer: ray.init itself retries for
    minutes. Only a TCP connect to the head's port; Ray's own handshake comes later."""
    source = "--address" if address else "RAY_ADDRESS"  # the user must know which one to fix
    address = given_address(address)
    if address is None:
        return
    host, port = _host_port(address, source)
    try:
        speaks_grpc = _answers_http2(host, port, timeout_s)
    except OSError as exc:
        reason = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise ClusterError(f"{source}: {address!r} does not answer ({reason} at {host}:{port} within "
                           f"{timeout_s:g} s); expected a running Ray head (ray start --head), or no {source} "
                           "for a local Ray") from None
    not_ray = None if speaks_grpc else "it accepts connections but speaks no gRPC"
    if not_ray is None and "://" not in address:  # a GCS address: ask Ray itself, with a deadline
        not_ray = _gcs_silent(f"{host}:{port}", timeout_s)
    if not_ray:
        raise ClusterError(f"{source}: {address!r} does not answer as a Ray head ({not_ray}); expected the head's "
                           "GCS address (port 6379 by default), ray://HOST:10001 or auto")


def _gcs_silent(address: str, timeout_s: float) -> str | None:
    """None when the Ray GCS at `address` answers a key-value read within the timeout, else why not."""
    try:
        private_apis.gcs_answers(address, timeout_s)
    except Exception as exc:  # noqa: BLE001 - RpcError, timeouts: all mean "not a Ray head we can use"
        return first_line(exc, 200)
    return None


def _answers_http2(host: str, port: int, timeout_s: float) -> bool:
    """Ray's head (GCS, or the Ray Client server) is a gRPC server: to an HTTP/2 preface it
    answers with a SETTINGS frame at once. A port that accepts connections and stays silent (a
    proxy, another service) would otherwise keep ray.init retrying for minutes. With TLS
    (RAY_USE_TLS) only the connection is checked."""
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return True
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        sock.sendall(_HTTP2_PREFACE + _EMPTY_SETTINGS)
        header = b""
        while len(header) < 9:
            chunk = sock.recv(9 - len(header))
            if not chunk:
                return False  # closed without a word
            header += chunk
        return header[3] == 0x4  # frame type SETTINGS


def _host_port(address: str, source: str = "--address") -> tuple[str, int]:
    if address == "auto":
        return _auto_address()
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, _, port = hostport.rstrip("/").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"{source}: {address!r} is not accepted; expected HOST:PORT, ray://HOST:PORT or auto")
    return host.strip("[]"), int(port)


def _auto_address() -> tuple[str, int]:
    try:
        found = private_apis.auto_address()
    except (ConnectionError, ValueError) as exc:
        raise ClusterError(f"--address: 'auto' found no running Ray cluster on this machine ({exc}); expected "
                           "one started with ray start --head, or no --address for a local Ray") from None
    host, _, port = found.rpartition(":")
    return host.strip("[]"), int(port)


def check_local_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """A local Ray gets this machine's CPUs and GPUs: a trial that asks for more never starts."""
    import torch

    cpus = _local_cpus()
    if cpus_per_trial > cpus:
        raise ClusterError(f"--cpus-per-trial: {cpus_per_trial:g} is not accepted; this machine has {cpus} "
                           f"CPUs: expected at most {cpus}, or --address a cluster with bigger nodes")
    gpus = torch.cuda.device_count() if gpus_per_trial > 0 else 0
    if gpus_per_trial > gpus:
        raise ClusterError(f"--gpus-per-trial: {gpus_per_trial:g} is not accepted; this machine has {gpus} "
                           f"GPU{'s' if gpus != 1 else ''}: expected at most {gpus}, or --address a cluster with GPUs")


def _local_cpus() -> int:
    try:
        return private_apis.local_ray_cpus()
    except (ImportError, AttributeError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    # The environment for the Ray processes this starts; the flag for this process.
    with environment.overridden({_LOOPBACK_ENV: "0"}), private_apis.ray_cluster_mode_off():
        yield


def start_local_ray(**kwargs) -> None:
    """A fresh local Ray ("local": never silently join whatever cluster ran last here), every
    server bound to 127.0.0.1."""
    import ray

    with _loopback_only():
        ray.init(address="local", include_dashboard=False, log_to_driver=False, **kwargs)


def start_ray(address: str | None, code: list[str] | None = None) -> bool:
    """Joins `address` (or RAY_ADDRESS) or starts a local Ray. Returns True when this call started
    the connection (and so must shut it down). `code`: the user's model files or package folders;
    on a cluster they are shipped to every worker with the job's runtime environment (py_modules),
    where a file is importable by its name. A local Ray's workers share this machine's files."""
    import ray

    if ray.is_initialized():
        return False
    address = given_address(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=False, runtime_env={"py_modules": code} if code else None)
        else:
            start_local_ray()
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach Ray at {address or 'local'}: {exc}") from None
    return True


def largest_node() -> tuple[float, float]:
    """(CPUs, GPUs) of the biggest alive node: a trial's resources must fit on one node."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    return (max((n.get("CPU", 0.0) for n in nodes), default=0.0),
            max((n.get("GPU", 0.0) for n in nodes), default=0.0))


def check_feasible(cpus_per_trial: float, gpus_per_trial: float) -> None:
    cpus, gpus = largest_node()
    if gpus_per_trial > gpus:
        raise ClusterError(f"--gpus-per-trial: {gpus_per_trial:g} is not accepted; no node of the Ray cluster has "
                           f"that many GPUs (largest: {gpus:g}); expected at most {gpus:g}")
    if cpus_per_trial > cpus:
        raise ClusterError(f"--cpus-per-trial: {cpus_per_trial:g} is not accepted; no node of the Ray cluster has "
                           f"that many CPUs (largest: {cpus:g}); expected at most {cpus:g}")


def stop_when_infeasible(cpus_per_trial: float, gpus_per_trial: float, grace_s: float = INFEASIBLE_GRACE_S):
    """A Tune callback that turns Tune's "insufficient resources" warning into an error: when no
    trial runs and no alive node can hold one (a node left) for `grace_s`, the search stops."""
    from ray import tune

    class StopWhenInfeasible(tune.Callback):
        def __init__(self):
            self.since: float | None = None
            self.checked = 0.0

        def on_step_begin(self, iteration, trials, **info):
            if any(t.status == "RUNNING" for t in trials) or not any(t.status == "PENDING" for t in trials):
                self.since = None
                return
            now = time.monotonic()
            if now - self.checked < 1.0:  # ray.nodes() is an RPC: at most once a second
                return
            self.checked = now
            try:
                check_feasible(cpus_per_trial, gpus_per_trial)
                self.since = None
            except ClusterError as exc:
                self.since = self.since or now
                if now - self.since >= grace_s:
                    raise ClusterError(f"the search stopped: {exc}") from None

    return StopWhenInfeasible()
