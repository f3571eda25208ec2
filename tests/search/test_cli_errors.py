"""Bad input: one line naming the flag, the value and what is accepted, exit 2, within seconds,
and nothing created: --home as it was, no MLflow run, no Ray started, no data decoded."""
from __future__ import annotations

from pathlib import Path

import pytest

import search.run as run_module
from tests.search.rejection import PASSWORD, check_rejected

LONG_NAME = "n" * 300

# (argv, what the one line must contain). Placeholders: HOME (the --home given), TMP (a scratch
# folder), FILE (a plain file in TMP).
CASES = {
    "budget zero": (["--budget", "0"], "--budget: 0"),
    "budget not a number": (["--budget", "lots"], "--budget: 'lots' is not an integer"),
    "unknown dataset": (["--dataset", "imagenet"], "--dataset: 'imagenet'"),
    "unknown model": (["--model", "alexnet"], "--model: 'alexnet'"),
    "unknown method": (["--methods", "magnitude,prayer"], "--methods: 'prayer'"),
    "duplicate method": (["--methods", "magnitude,magnitude"], "--methods: 'magnitude,magnitude' is not accepted; "
                         "expected a comma-separated subset of"),
    "bounds above one": (["--bounds-fc", "0.1,1.2"], "--bounds-fc: '0.1,1.2'"),
    "bounds negative joined": (["--bounds-conv=-0.1,0.5"], "--bounds-conv: '-0.1,0.5'"),
    "bounds negative as next argument": (["--bounds-fc", "-0.1,0.5"],
                                         "--bounds-fc: '-0.1,0.5' is not accepted; expected lo,hi with 0 <= lo"),
    "bounds min above max": (["--bounds-conv", "0.6,0.2"], "lo,hi with 0 <= lo <= hi < 1"),
    "missing data dir": (["--dataset", "cifar10", "--data-dir", "/no/such/dir"], "--data-dir: '/no/such/dir'"),
    "unknown flag": (["--budgit", "3"], "unrecognized arguments: --budgit 3"),
    "config is a folder": (["--config", "TMP"], "--config: 'TMP' cannot be read"),
    # numbers: type, finiteness, range
    "baseline epochs nan": (["--baseline-epochs", "nan"], "--baseline-epochs: 'nan' is not a finite number"),
    "finetune epochs nan": (["--finetune-epochs", "nan"], "--finetune-epochs: 'nan' is not a finite number"),
    "baseline lr nan": (["--baseline-lr", "nan"], "--baseline-lr: 'nan' is not a finite number"),
    "baseline lr negative": (["--baseline-lr", "-1"], "--baseline-lr: -1.0 is not accepted; expected 0 < baseline-lr"),
    "baseline lr zero": (["--baseline-lr", "0"], "--baseline-lr: 0.0 is not accepted; expected 0 < baseline-lr"),
    "finetune lr inf": (["--finetune-lr", "0.001,inf"], "--finetune-lr: '0.001,inf' is not lo,hi finite numbers"),
    "hybrid temperature inf": (["--hybrid-temperature", "1,inf"], "--hybrid-temperature: '1,inf' is not lo,hi finite"),
    "cpus per trial nan": (["--cpus-per-trial", "nan"], "--cpus-per-trial: 'nan' is not a finite number"),
    "gpus per trial nan": (["--gpus-per-trial", "nan"], "--gpus-per-trial: 'nan' is not a finite number"),
    "gpus per trial negative": (["--gpus-per-trial", "-1"], "--gpus-per-trial: -1.0 is not accepted; expected 0 <= "),
    "gpus per trial 1.5": (["--gpus-per-trial", "1.5"], "--gpus-per-trial: 1.5 is not accepted; expected a fraction"),
    "max concurrent negative": (["--max-concurrent", "-1"], "--max-concurrent: -1 is not accepted; expected 0 <= "),
    "seed too large": (["--seed", "99999999999999999999"],
                       "--seed: 99999999999999999999 is not accepted; expected 0 <= seed <= 4294967295"),
    "taylor batches fractional": (["--taylor-batches", "0.5,0.7"], "--taylor-batches: '0.5,0.7' is not lo,hi integers"),
    "taylor batches zero": (["--taylor-batches", "0,4"], "--taylor-batches: '0,4' is not accepted; expected lo,hi with "
                            "1 <= lo <= hi"),
    "hybrid filter ratio above the pruner's limit": (["--hybrid-filter-ratio", "0.92,0.95"],
                                                     "--hybrid-filter-ratio: '0.92,0.95' is not accepted; expected "
                                                     "lo,hi with 0 <= lo <= hi < 0.9"),
    "duplicate rewind points": (["--lottery-rewind", "0,0"], "--lottery-rewind: '0.0,0.0' is not accepted"),
    "rewind point at the end of training": (["--lottery-rewind", "0,1"],
                                            "--lottery-rewind: '0.0,1.0' is not accepted; expected comma-separated "
                                            "values, each once, with 0 <= lottery-rewind < 1"),
    "unknown quantization": (["--quantize", "int4"], "--quantize: 'int4' is not accepted; expected a comma-separated "
                             "subset of none, int8"),
    "unknown taylor granularity": (["--taylor-granularity", "weight,channel"],
                                   "--taylor-granularity: 'channel' is not accepted; expected a comma-separated subset "
                                   "of weight, filter"),
    # upper bounds: a number no search could use fails here, not after the baseline trained
    "budget astronomical": (["--budget", "1e20"], "--budget: 100000000000000000000 is not accepted; expected 1 <= "
                            "budget <= 100000"),
    "baseline epochs huge": (["--baseline-epochs", "1e308"], "--baseline-epochs: 1e+308 is not accepted; expected "
                             "0 <= baseline-epochs <= 10000"),
    "baseline lr huge": (["--baseline-lr", "1e308"], "--baseline-lr: 1e+308 is not accepted; expected 0 < "
                         "baseline-lr <= 1000"),
    "finetune epochs huge": (["--finetune-epochs", "1e308"], "--finetune-epochs: 1e+308 is not accepted"),
    "finetune lr huge": (["--finetune-lr", "1e308"], "--finetune-lr: 1e+308 is not accepted; expected lo,hi with "
                         "0 < lo <= hi <= 1000"),
    "latency batch huge": (["--latency-batch", "1e12"], "--latency-batch: 1000000000000 is not accepted; expected "
                           "1 <= latency-batch <= 4096"),
    "lottery rounds huge": (["--lottery-rounds", "1000"], "--lottery-rounds: 1000 is not accepted; expected lo,hi "
                            "with 1 <= lo <= hi <= 30"),
    "hybrid temperature huge": (["--hybrid-temperature", "1e308"], "--hybrid-temperature: 1e+308 is not accepted"),
    "taylor batches huge": (["--taylor-batches", "1000000"], "--taylor-batches: 1000000 is not accepted"),
    # numbers parsed strictly: what a user types, nothing Python's int() and float() also take
    "cpus per trial huge": (["--cpus-per-trial", "4096"], "--cpus-per-trial: 4096.0 is not accepted; expected 0 < "
                            "cpus-per-trial <= 1024"),
    "budget with an underscore": (["--budget", "1_000"], "--budget: '1_000' is not an integer"),
    "budget with spaces": (["--budget", " 5 "], "--budget: ' 5 ' is not an integer"),
    "budget in fullwidth digits": (["--budget", "\uff15"], "--budget: '\uff15' is not an integer"),
    "baseline lr with an underscore": (["--baseline-lr", "0.0_1"], "--baseline-lr: '0.0_1' is not a finite number"),
    # cross-checks against the data (sizes known before decoding)
    "taylor batches above the data's": (["--taylor-batches", "20"], "--taylor-batches: 20 is not accepted; expected "
                                        "at most 12, the training split's batches (1437 images / batch 128)"),
    "train subset leaves nothing": (["--val-fraction", "0.0001"], "--val-fraction: 0.0001 is not accepted; expected "
                                    "settings that leave training and validation images"),
    "data dir with digits": (["--data-dir", "TMP"], "--data-dir: 'TMP' is not accepted; expected no --data-dir "
                             "with --dataset digits"),
    # names
    "name starting with a dash": (["--name", "-x"], "--name: '-x' is not accepted; expected 1-100 letters"),
    "name too long": (["--name", LONG_NAME], f"--name: '{LONG_NAME}' is not accepted; expected 1-100 letters"),
    "name with a newline": (["--name", "a\nb"], "--name: 'a\\nb' is not accepted"),
    "name with a slash": (["--name", "a/b"], "--name: 'a/b' is not accepted"),
    # destinations
    "home is a file": (["--home", "FILE"], "--home: 'FILE' is a file; expected a folder you can write"),
    "home under a file": (["--home", "FILE/home"], "--home: 'FILE/home' cannot be created"),
    "home unwritable": (["--home", "/proc/prune-search-home"], "--home: '/proc/prune-search-home' is not writable"),
    "storage path unwritable": (["--storage-path", "/proc/prune-search-ray"],
                                "--storage-path: '/proc/prune-search-ray' is not writable"),
    "storage path of an unknown kind": (["--storage-path", "foo://x/y"], "--storage-path: 'foo://x/y' cannot be "
                                        "used (ArrowInvalid"),
    "storage path unreachable": (["--storage-path", "s3://prune-search-no-such-bucket/x"],
                                 "--storage-path: 's3://prune-search-no-such-bucket/x' "),
    # stores and cluster
    "tracking uri of an unknown kind": (["--tracking-uri", "foo://bar"], "--tracking-uri: 'foo://bar' is not accepted; "
                                        "expected an MLflow tracking URI"),
    "tracking server down, password redacted": (["--tracking-uri", f"http://alice:{PASSWORD}@127.0.0.1:1"],
                                                "--tracking-uri: MLflow server http://alice:***@127.0.0.1:1 is "
                                                "unreachable"),
    "optuna storage of an unknown kind": (["--optuna-storage", "foo://bar"], "--optuna-storage: 'foo://bar' is not "
                                          "accepted"),
    "ray address that does not answer": (["--address", "127.0.0.1:1"], "--address: '127.0.0.1:1' does not answer"),
    "ray address malformed": (["--address", "nonsense"], "--address: 'nonsense' is not accepted; expected HOST:PORT"),
    "gpus on a machine without": (["--gpus-per-trial", "0.3"], "--gpus-per-trial: 0.3 is not accepted; this machine "
                                  "has 0 GPUs"),
    "more cpus than the machine": (["--cpus-per-trial", "512"], "--cpus-per-trial: 512 is not accepted; this "
                                   "machine has"),
}


def fill(argv: list[str], tmp_path: Path) -> list[str]:
    (tmp_path / "file").write_text("x")
    subs = {"TMP": str(tmp_path), "FILE": str(tmp_path / "file")}
    return [subs.get(a, a.replace("FILE/", subs["FILE"] + "/")) for a in argv]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_creates_nothing(case, guarded, tmp_path, capsys):
    argv, expected = CASES[case]
    expected = expected.replace("'TMP'", repr(str(tmp_path))).replace("'FILE", "'" + str(tmp_path / "file"))
    check_rejected(fill(argv, tmp_path), expected, guarded, capsys)


def test_a_toml_bool_is_not_a_number(guarded, tmp_path, capsys):
    config = tmp_path / "search.toml"
    config.write_text("budget = true\n")
    check_rejected(["--config", str(config)], "--budget: True is not an integer", guarded, capsys)


def test_a_dead_ray_address_from_the_environment_is_blamed_on_ray_address(guarded, capsys, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    check_rejected([], "RAY_ADDRESS: '127.0.0.1:1' does not answer", guarded, capsys)


def test_unanswered_ray_address_fails_in_seconds(guarded, capsys):
    """TEST-NET-1 (RFC 5737) routes nowhere: no answer at all, or no route."""
    took = check_rejected(["--address", "192.0.2.1:6379"], "--address: '192.0.2.1:6379' does not answer",
                          guarded, capsys)
    assert took < 15


def test_silent_server_at_the_address_fails_in_seconds(guarded, capsys):
    """A port that accepts connections but never speaks (ray.init would retry for minutes)."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # never accepted, never answered
        address = f"127.0.0.1:{server.getsockname()[1]}"
        took = check_rejected(["--address", address], f"--address: '{address}' does not answer", guarded, capsys)
    assert took < 15


@pytest.mark.parametrize("db,expected", [
    ("mlflow.db", "--home: {path} is not a readable SQLite database"),
    ("optuna.db", "--home: the Optuna storage sqlite:///{path} cannot be used"),
])
def test_corrupt_store_in_home_is_one_line(db, expected, guarded, capsys):
    guarded.mkdir()
    path = guarded / db
    path.write_bytes(b"this is not a database, just bytes" * 100)
    expected = expected.format(path=path)
    if db == "optuna.db":  # sqlite3 itself says so before Optuna is asked
        expected = f"--home: {path} is not a readable SQLite database"
    check_rejected([], expected, guarded, capsys)


def test_sqlite_file_of_another_program_is_not_an_mlflow_store(guarded, capsys):
    import sqlite3

    guarded.mkdir()
    con = sqlite3.connect(guarded / "mlflow.db")
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()
    check_rejected([], "without MLflow's tables", guarded, capsys)


def test_image_folder_with_one_class_is_rejected_before_decoding(image_folder, guarded, capsys):
    root = image_folder(["cat"])
    check_rejected(["--dataset", "cifar10", "--data-dir", str(root)],
                   f"--data-dir: '{root}' is not accepted; expected at least 2 classes (found 1: cat)", guarded, capsys)


def test_corrupt_images_are_named_and_rejected(image_folder, monkeypatch, tmp_path, capsys):
    """Decoding runs (the only way to find a corrupt file), then one line naming a bad file and
    the count; no cache written, no Ray, no MLflow."""
    from search import cluster

    monkeypatch.setattr(cluster, "start_ray", lambda *a, **k: pytest.fail("Ray started on bad input"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = image_folder(["cat", "dog"], corrupt=2)
    check_rejected(["--dataset", "cifar10", "--data-dir", str(root), "--methods", "magnitude"],
                   f"--data-dir: 2 of 10 images under {root / 'train'} cannot be decoded, e.g. "
                   f"{root / 'train' / 'cat'}/bad0.jpg",
                   tmp_path / "home", capsys)


def test_resume_without_the_stored_password_is_one_line(tmp_path, guarded, capsys, monkeypatch):
    from search.config import load_config
    from search.resume import SearchRecord, save_record

    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    uri = f"http://alice:{PASSWORD}@127.0.0.1:5000"
    cfg = load_config(["--tracking-uri", uri, "--name", "s"])
    save_record(guarded, SearchRecord("s", cfg, uri, "1", "abc", f"sqlite:///{guarded}/optuna.db"))
    path = guarded / "searches" / "s.json"
    assert PASSWORD not in path.read_text() and "alice:***@" in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    check_rejected(["--resume", "s", "--home", str(guarded)],
                   "--resume: the search used http://alice:***@127.0.0.1:5000, whose password is not stored", guarded,
                   capsys)


def test_config_file_values_apply_and_flags_win(tmp_path):
    from search.config import load_config

    path = tmp_path / "search.toml"
    path.write_text('budget = 7\nmethods = ["fpgm", "hybrid"]\nbounds-fc = [0.5, 0.9]\n')
    cfg = load_config(["--config", str(path), "--budget", "9"])
    assert cfg.budget == 9 and cfg.methods == ("fpgm", "hybrid") and cfg.bounds_fc == (0.5, 0.9)


@pytest.mark.parametrize("content,expected", [
    ("budget = [1, 2", "is not valid TOML"),
    ("budgett = 3", "unknown setting(s) budgett"),
    ("budget = 'x'", "--budget: 'x' is not an integer"),
    ("taylor-batches = [0.5, 0.7]", "--taylor-batches: '0.5,0.7' is not lo,hi integers"),
])
def test_malformed_config_file_exits_2(content, expected, guarded, tmp_path, capsys):
    path = tmp_path / "search.toml"
    path.write_text(content)
    check_rejected(["--config", str(path)], expected, guarded, capsys)


def test_missing_config_file_exits_2(guarded, tmp_path, capsys):
    check_rejected(["--config", str(tmp_path / "nope.toml")], "does not exist", guarded, capsys)


def test_accepted_limits_are_the_pruners_own():
    """Validation derives the hybrid limit from the pruner: what one accepts, the other runs."""
    from pruners.hybrid import FILTER_RATIOS
    from search.config import SEARCHED, ConfigError, load_config

    assert SEARCHED["hybrid_filter_ratio"].accepted is FILTER_RATIOS
    MAX_FILTER_RATIO = FILTER_RATIOS.hi
    below = round(MAX_FILTER_RATIO - 0.01, 6)
    assert load_config(["--hybrid-filter-ratio", f"0,{below}"]).hybrid_filter_ratio == (0.0, below)
    with pytest.raises(ConfigError):
        load_config(["--hybrid-filter-ratio", f"0,{MAX_FILTER_RATIO}"])
    assert load_config(["--taylor-batches", "2,6"]).taylor_batches == (2, 6)


def test_help_explains_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        run_module.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--budget" in out and "Pareto" in out and "--methods" in out


def test_a_model_whose_forward_never_returns_is_one_line_in_seconds(guarded, tmp_path, capsys, monkeypatch):
    from search import preflight

    monkeypatch.setattr(preflight, "MODEL_PROBE_TIMEOUT_S", 2.0)
    factory = tmp_path / "stuck.py"
    factory.write_text("import time\nfrom torch import nn\n\nclass Stuck(nn.Module):\n"
                       "    def forward(self, x):\n        while True:\n            time.sleep(0.1)\n\n"
                       "def build(num_classes):\n    return Stuck()\n")
    took = check_rejected(["--model", f"{factory}:build"], f"--model: '{factory}:build' did not return an output "
                          "for one 1x1x8x8 input within 2 s", guarded, capsys)
    assert took < 10
