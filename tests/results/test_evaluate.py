"""search.results.evaluate: every Pareto trial of a real search is rebuilt from MLflow alone and gives back
exactly the accuracies it logged; another test folder is scored like a direct computation."""
from __future__ import annotations

import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image

from mlflow_config import tracking
from search.results import cli_kit as cli
from search.results import evaluate, reproduce

# torch.save's zip container: ~1.5 KiB fixed (archive header, pickle, version records) plus ~300 B
# per tensor (zip entry, 64-byte alignment, pickle record), whatever the tensor's size.
OVERHEAD_FIXED, OVERHEAD_PER_TENSOR = 2048, 400


def store_args(search) -> list[str]:
    return ["--home", str(search.home), "--tracking-uri", search.tracking_uri]


def pareto_runs(search) -> list:
    client = MlflowClient(search.tracking_uri)
    runs = [r for r in tracking.child_runs(client, search.experiment_id, search.parent_run_id)
            if r.data.tags.get("pareto") == "true"]
    assert runs, "the search has no Pareto trial"
    return runs


def load(search, run_id: str) -> reproduce.Trial:
    client, uri = cli.open_store(search.tracking_uri, search.home)
    return reproduce.load_trial(client, run_id, uri, home=search.home)


@pytest.mark.slow
def test_every_pareto_trial_reproduces_its_logged_accuracies_exactly(digits_search, capsys):
    for run in pareto_runs(digits_search):
        code = evaluate.main(["--run-id", run.info.run_id, *store_args(digits_search)])
        out = capsys.readouterr().out
        assert code == 0, out
        for key in ("val_acc", "test_acc"):
            logged = run.data.metrics[key]
            assert f"{key}: logged {logged!r} reproduced {logged!r} exact" in out, (run.data.tags["method"], out)


@pytest.mark.slow
def test_stored_model_is_the_logged_size_plus_container_overhead(digits_search):
    client = MlflowClient(digits_search.tracking_uri)
    for run in tracking.child_runs(client, digits_search.experiment_id, digits_search.parent_run_id):
        trial = load(digits_search, run.info.run_id)
        logged = run.data.metrics["size_bytes"]
        overhead = trial.artifact_bytes - logged
        print(f"{run.data.tags['method']:9s} size_bytes={logged:,.0f} file={trial.artifact_bytes:,} "
              f"overhead={overhead:,.0f} ({overhead / logged:.1%}, {trial.stored_tensors} tensors)")
        assert trial.encoded_bytes == logged  # the tensors ARE the logged size
        assert 0 < overhead < OVERHEAD_FIXED + OVERHEAD_PER_TENSOR * trial.stored_tensors


@pytest.mark.slow
def test_test_dir_accuracy_equals_a_direct_computation(digits_search, tmp_path, capsys):
    run_id = pareto_runs(digits_search)[0].info.run_id
    trial = load(digits_search, run_id)
    x, y = trial.data.test.x[:60], trial.data.test.y[:60]
    for i, (img, label) in enumerate(zip(x, y)):
        folder = tmp_path / "digits-png" / trial.data.classes[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy(), mode="L").save(folder / f"{i}.png")  # PNG: lossless
    with torch.inference_mode():
        direct = int((trial.model(trial.norm(x)).argmax(1) == y).sum()) / len(y)

    code = evaluate.main(["--run-id", run_id, "--test-dir", str(tmp_path / "digits-png"), *store_args(digits_search)])
    out = capsys.readouterr().out
    assert code == 0, out
    line = next(ln for ln in out.splitlines() if ln.startswith("test_dir_acc:"))
    assert float(line.split()[1]) == pytest.approx(direct, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("argv,expected", [
    (["--run-id", "0" * 32], "--run-id: '00000000000000000000000000000000' is not a run"),
    (["--run-id", "PARENT"], "is not a trial run"),
    (["--run-id", "PARETO", "--data-dir", "/no/such/dir"], "--data-dir: '/no/such/dir' is not an existing folder"),
    (["--run-id", "PARETO", "--test-dir", "/no/such/dir"], "--test-dir: '/no/such/dir' is not an existing folder"),
])
def test_bad_run_or_folder_is_one_line_exit_2(digits_search, argv, expected, capsys):
    ids = {"PARENT": digits_search.parent_run_id, "PARETO": pareto_runs(digits_search)[0].info.run_id}
    code = evaluate.main([ids.get(a, a) for a in argv] + store_args(digits_search))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


@pytest.mark.slow
def test_corrupt_image_in_test_dir_is_named(digits_search, tmp_path, capsys):
    folder = tmp_path / "test-dir" / "3"
    folder.mkdir(parents=True)
    Image.fromarray(torch.zeros(8, 8, dtype=torch.uint8).numpy(), mode="L").save(folder / "ok.png")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code = evaluate.main(["--run-id", pareto_runs(digits_search)[0].info.run_id, "--test-dir",
                          str(tmp_path / "test-dir"), *store_args(digits_search)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: --test-dir: 1 of 2 images under {folder.parent} cannot be decoded, e.g. "
                             f"{folder / 'bad.png'} ("), err


@pytest.mark.parametrize("argv,expected", [
    ([], "required: --run-id"),
    (["--run-id", "x", "--dataset", "imagenet"], "--dataset: invalid choice: 'imagenet'"),
    (["--run-id", "x"], "no MLflow store at sqlite:///"),
])
def test_bad_command_line_is_one_line_exit_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code = evaluate.main([*argv, "--home", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (tmp_path / "mlflow.db").exists()  # looking never creates a store


@pytest.mark.slow
def test_a_folder_that_does_not_fit_the_trial_leaves_no_cache_in_home(digits_search, tmp_path, capsys):
    """RGB 16x16 images for a trial trained on 1x8x8 digits: rejected in one line, and the images
    decoded to find that out are not left in the search's --home."""
    for split in ("train", "test"):
        for c in ("a", "b"):
            folder = tmp_path / "rgb" / split / c
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (16, 16), (i * 60, 20, 0)).save(folder / f"{i}.png")
    datasets = digits_search.home / "datasets"
    before = sorted(datasets.iterdir()) if datasets.is_dir() else []
    code = evaluate.main(["--run-id", pareto_runs(digits_search)[0].info.run_id, "--dataset", "imagefolder",
                          "--data-dir", str(tmp_path / "rgb"), *store_args(digits_search)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "do not fit trial" in err[0], err
    assert (sorted(datasets.iterdir()) if datasets.is_dir() else []) == before
