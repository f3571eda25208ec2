"""Every use of Ray's and Optuna's private APIs, in one place. Each exists because no public API
does the job (named per function); tests/test_private_apis.py checks each is still there and
behaves as assumed, so an upgrade that moves one fails that test by name instead of a search.

MLflow's one private use (the fluent tracking URI, for log_model) is in mlflow_config.tracking."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def gcs_answers(address: str, timeout_s: float) -> None:
    """Raises unless the Ray GCS at `address` answers a key-value read within `timeout_s`.
    ray.init has no timeout for an address that accepts TCP but never speaks Ray's protocol."""
    from ray._raylet import GcsClient

    GcsClient(address=address).internal_kv_get(b"prune-search-probe", None, timeout=timeout_s)


def auto_address() -> str:
    """What `ray.init(address="auto")` would connect to, without connecting (ConnectionError or
    ValueError when none runs on this machine)."""
    from ray._private import services

    return services.canonicalize_bootstrap_address_or_die("auto")


def local_ray_cpus() -> int:
    """The CPUs a local Ray will offer (cgroup limits included, unlike os.cpu_count)."""
    from ray._private.utils import get_num_cpus

    return int(get_num_cpus())


@contextlib.contextmanager
def ray_cluster_mode_off() -> Iterator[None]:
    """Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER-style switches at import; the local, loopback-only
    Ray needs the flag off in this process too, where ray was imported before the environment
    changed."""
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


# Ray Tune's OptunaSearch keeps its study and its Ray-trial -> Optuna-trial map privately; the
# searcher subclass in search.tune reads them to link and to tell FAIL (no public accessor).
def searcher_study(searcher: Any):
    return searcher._ot_study


def searcher_trial(searcher: Any, trial_id: str):
    """The live optuna.Trial that Ray trial `trial_id` runs, or None."""
    return searcher._ot_trials.get(trial_id)


def searcher_completed(searcher: Any) -> set:
    """Ray trial ids the searcher has already told Optuna about."""
    return searcher._completed_trials


def set_frozen_trial_user_attr(study, trial, key: str, value: Any) -> None:
    """A user attribute on a trial of a study reopened from storage (Optuna's public set_user_attr
    lives only on a live Trial, which a resume no longer has)."""
    study._storage.set_trial_user_attr(trial._trial_id, key, value)
