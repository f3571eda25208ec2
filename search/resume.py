"""Resuming an interrupted search to its budget, with no trial lost or counted twice.

A search's record (config, MLflow parent run, Optuna study) is saved in `<home>/searches/` when
it starts. On `--resume NAME` the driver reconciles Optuna with MLflow, the source of truth for
finished trials, then runs only the remaining budget against the same study:

- an Optuna trial left RUNNING whose MLflow child run FINISHED (the driver died between the
  trial's end and Optuna's tell) is told COMPLETE with the values MLflow holds;
- any other Optuna trial left RUNNING is told FAIL ("interrupted"), and its MLflow run, if still
  RUNNING, is marked FAILED; its parameters are enqueued again, so it runs once more with exactly
  the same configuration (an enqueued recipe point is never lost to a kill).
The budget counts trials that ran to an end: COMPLETE, and FAIL for a reason of their own (a
diverged loss); an interrupted trial does not count, its re-run does. Enqueued points the kill
left WAITING stay in the study and are asked first. The link between Optuna and MLflow is the
`optuna_trial` param every child run carries.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient

from mlflow_config import tracking
from mlflow_config.secrets import is_redacted, redact, split_userinfo
from search import private_apis
from search.config import SECRET_FIELDS, ConfigError, SearchConfig, config_from_dict, config_to_dict, replace
from trainables.measure import VAL_ACC

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the search stopped before this trial finished"


@dataclass(frozen=True)
class SearchRecord:
    name: str
    config: SearchConfig
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    optuna_url: str


def record_path(home: Path, name: str) -> Path:
    return home / "searches" / f"{name}.json"


def save_record(home: Path, rec: SearchRecord) -> None:
    """Passwords in the URIs are stored as *** (a resume takes them from the command line or the
    environment again); the file is readable by its owner only, all the same."""
    path = record_path(home, rec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = config_to_dict(rec.config)
    config.update({k: redact(config[k]) for k in SECRET_FIELDS if config.get(k)})
    blob = {"name": rec.name, "config": config, "tracking_uri": redact(rec.tracking_uri),
            "experiment_id": rec.experiment_id, "parent_run_id": rec.parent_run_id, "optuna_url": redact(rec.optuna_url)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(blob, indent=2))


def with_budget(home: Path, rec: SearchRecord, budget: int) -> SearchRecord:
    """The record with a new budget, saved (a later resume keeps it)."""
    rec = SearchRecord(rec.name, replace(rec.config, budget=budget), rec.tracking_uri, rec.experiment_id,
                       rec.parent_run_id, rec.optuna_url)
    save_record(home, rec)
    return rec


def load_record(home: Path, name: str, given: SearchConfig | None = None) -> SearchRecord:
    """The record, with any redacted password restored from `given` (the resume's own
    --tracking-uri / --optuna-storage, or MLFLOW_TRACKING_URI) when it names the same URI."""
    path = record_path(home, name)
    if not path.exists():
        known = sorted(p.stem for p in (home / "searches").glob("*.json")) if (home / "searches").is_dir() else []
        raise ConfigError(f"--resume: no search {name!r} in {home / 'searches'}; known: {', '.join(known) or 'none'}. "
                          "A search stopped before its first trial (while loading data or training the baseline) "
                          "has nothing to resume: run its original command again (a finished baseline is reused)")
    try:
        blob = json.loads(path.read_text())
        cfg = config_from_dict(blob["config"])
        tracking_uri, optuna_url = str(blob["tracking_uri"]), str(blob["optuna_url"])
        experiment_id, parent_run_id = str(blob["experiment_id"]), str(blob["parent_run_id"])
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        raise ConfigError(f"--resume: search record {path} is corrupt ({exc}); it cannot be resumed") from None
    given_tracking = os.environ.get("MLFLOW_TRACKING_URI") or (given.tracking_uri if given else None)
    tracking_uri = _with_secret(tracking_uri, given_tracking, "--tracking-uri", http_env=True)
    optuna_url = _with_secret(optuna_url, given.optuna_storage if given else None, "--optuna-storage")
    cfg = replace(cfg, tracking_uri=tracking_uri if cfg.tracking_uri else None,
                  optuna_storage=optuna_url if cfg.optuna_storage else None)
    return SearchRecord(str(blob["name"]), cfg, tracking_uri, experiment_id, parent_run_id, optuna_url)


def _with_secret(stored: str, given: str | None, flag: str, http_env: bool = False) -> str:
    if not is_redacted(stored):
        return stored
    if given and redact(given) == stored:
        return given
    if http_env and stored.startswith(("http://", "https://")) and os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        return split_userinfo(stored)[0]  # MLflow takes the user and password from the environment
    raise ConfigError(f"--resume: the search used {stored}, whose password is not stored; expected {flag} with "
                      "the password again" + (" (or MLFLOW_TRACKING_USERNAME/PASSWORD set)" if http_env else ""))


def was_interrupted(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs.get("failure_reason") == INTERRUPTED


def counted_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials the budget counts: COMPLETE, and FAIL for a reason of their own (not interrupted)."""
    ended = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL))
    return [t for t in ended if not was_interrupted(t)]


def reconcile(rec: SearchRecord, client: MlflowClient) -> int:
    """Settles trials left RUNNING and enqueues the interrupted ones again; returns how many
    trials the budget already counts (counted_trials)."""
    study = optuna.load_study(study_name=rec.name, storage=rec.optuna_url)
    runs = tracking.child_runs(client, rec.experiment_id, rec.parent_run_id)
    by_trial = {}
    for r in runs:
        number = r.data.params.get("optuna_trial")
        if number is not None and (r.info.status == "FINISHED" or number not in by_trial):
            by_trial[number] = r
    metric = rec.config.objective_metric
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        run = by_trial.get(str(t.number))
        values = None if run is None or run.info.status != "FINISHED" else \
            [run.data.metrics.get(VAL_ACC), run.data.metrics.get(metric)]
        if values and all(v is not None and math.isfinite(v) for v in values):
            private_apis.set_frozen_trial_user_attr(study, t, "mlflow_run_id", run.info.run_id)
            study.tell(t.number, values)
            logger.info(f"resume: trial {t.number} had finished in MLflow; told Optuna COMPLETE")
        else:
            private_apis.set_frozen_trial_user_attr(study, t, "failure_reason", INTERRUPTED)
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            # skip_if_exists=False: the interrupted trial itself holds these params, and it must run.
            study.enqueue_trial(t.params, user_attrs={"rerun_of": t.number})
            logger.info(f"resume: trial {t.number} was interrupted; it runs again with the same parameters")
    mark_orphans_failed(client, runs)
    return len(counted_trials(study))


def mark_orphans_failed(client: MlflowClient, runs) -> None:
    """Child runs still RUNNING when no trial runs (a killed worker or driver) are FAILED."""
    for r in runs:
        if r.info.status == "RUNNING":
            tracking.finish_run(client, r.info.run_id, ok=False, reason=INTERRUPTED)
