"""The user's model, checkpoint and image folder: each bad one is one line naming it, exit 2, and
nothing started (no data decoded, no Ray, no MLflow run, --home as it was); the rules a checkpoint
brings (cache keyed by content, lottery only with early weights)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from tests.search.byo_model import build
from tests.search.rejection import check_rejected

TINY = Path(__file__).resolve().with_name("byo_model.py")
SPEC = f"{TINY}:build"


@pytest.fixture
def files(tmp_path):
    """A factory file with broken variants, and checkpoints good and bad for TinyNet on digits."""
    (tmp_path / "factories.py").write_text(
        "import torch\n"
        "NOT_CALLABLE = 3\n"
        "def no_module(num_classes):\n    return {'weights': 1}\n"
        "def linear(num_classes):\n    return torch.nn.Linear(64, num_classes)\n")
    (tmp_path / "broken.py").write_text("import no_such_package_here\ndef build():\n    pass\n")
    model = build(10)
    torch.save(model.state_dict(), tmp_path / "good.pt")
    torch.save({"model": model.state_dict()}, tmp_path / "nested.pt")
    state = model.state_dict()
    torch.save({k: v for k, v in state.items() if k != "block.pw.weight"}, tmp_path / "missing.pt")
    torch.save({**state, "head.weight": torch.zeros(10, 7)}, tmp_path / "shape.pt")
    torch.save({**state, "extra.weight": torch.zeros(1)}, tmp_path / "extra.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file at all")
    torch.save({"a": [1, 2]}, tmp_path / "nostate.pt")
    return tmp_path


CASES = {
    "factory module does not import": (["--model", "no_such_pkg.models:build"],
                                       "--model: 'no_such_pkg.models:build': no_such_pkg.models does not import"),
    "factory file raises on import": (["--model", "T/broken.py:build"], "does not import (ModuleNotFoundError"),
    "factory file missing": (["--model", "T/nowhere.py:build"], "--model: 'T/nowhere.py' is not an existing file"),
    "factory name missing": (["--model", "T/factories.py:nothing"], "has no 'nothing'"),
    "factory not callable": (["--model", "T/factories.py:NOT_CALLABLE"], "'NOT_CALLABLE' is a int, not callable"),
    "factory returns no module": (["--model", "T/factories.py:no_module"], "returned dict, not an nn.Module"),
    "model does not take the data": (["--model", "T/factories.py:linear"], "fails on this data's input (1x1x8x8"),
    "checkpoint missing": (["--model", SPEC, "--checkpoint", "T/none.pt"], "--checkpoint: 'T/none.pt' is not accepted"),
    "checkpoint does not load": (["--model", SPEC, "--checkpoint", "T/garbage.pt"],
                                 "--checkpoint: 'T/garbage.pt' does not load with torch.load(weights_only=True)"),
    "checkpoint holds no state_dict": (["--model", SPEC, "--checkpoint", "T/nostate.pt"], "holds no state_dict"),
    "checkpoint key missing": (["--model", SPEC, "--checkpoint", "T/missing.pt"],
                               "does not fit the model: the model's 'block.pw.weight' is missing from it"),
    "checkpoint shape differs": (["--model", SPEC, "--checkpoint", "T/shape.pt"],
                                 "'head.weight' has shape [10, 7] in it but [10, 24] in the model"),
    "checkpoint extra key": (["--model", SPEC, "--checkpoint", "T/extra.pt"], "it has 'extra.weight', which the model"),
    "rewind checkpoint does not fit": (["--model", SPEC, "--checkpoint", "T/good.pt", "--rewind-checkpoint",
                                        "T/shape.pt"], "--rewind-checkpoint: 'T/shape.pt' does not fit the model"),
    "lottery asked without early weights": (["--model", SPEC, "--checkpoint", "T/good.pt", "--methods", "lottery"],
                                            "--methods: 'lottery' is not accepted; expected methods without lottery"),
    "rewind checkpoint without checkpoint": (["--rewind-checkpoint", "T/good.pt"], "no value without --checkpoint"),
    "normalize malformed": (["--normalize", "0.5"], "--normalize: '0.5' is not accepted"),
    "normalize std zero": (["--normalize", "0.5,0"], "--normalize: '0.5,0' is not accepted"),
    "normalize wrong channel count": (["--normalize", "0.1,0.2,0.3,0.4"], "for 1-channel images"),
    "image size on digits": (["--image-size", "16"], "--image-size: 16 is not accepted; expected 0 for digits"),
    "imagefolder without a folder": (["--dataset", "imagefolder"], "--data-dir: None is not accepted"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_model_checkpoint_or_setting_is_one_line(case, files, guarded, capsys):
    argv, expected = CASES[case]
    argv = [a.replace("T/", f"{files}/") for a in argv]
    check_rejected(argv, expected.replace("T/", f"{files}/"), guarded, capsys)


def test_image_folder_with_one_class_is_rejected(image_folder, guarded, capsys):
    root = image_folder(["cat"])
    check_rejected(["--dataset", "imagefolder", "--data-dir", str(root)],
                   f"--data-dir: '{root}' is not accepted; expected at least 2 classes (found 1: cat)", guarded, capsys)


def test_unreadable_first_image_is_named_before_decoding(tmp_path, guarded, capsys):
    for c in ("a", "b"):
        (tmp_path / "imgs" / "train" / c).mkdir(parents=True)
        (tmp_path / "imgs" / "train" / c / "0.png").write_bytes(b"\x89PNG broken")
    bad = tmp_path / "imgs" / "train" / "a" / "0.png"
    check_rejected(["--dataset", "imagefolder", "--data-dir", str(tmp_path / "imgs")], f"{bad} cannot be decoded",
                   guarded, capsys)


def test_unreadable_image_among_good_ones_is_named(image_folder, monkeypatch, tmp_path, capsys):
    from search import cluster

    monkeypatch.setattr(cluster, "start_ray", lambda *a, **k: pytest.fail("Ray started on bad input"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = image_folder(["cat", "dog"], corrupt=1)
    check_rejected(["--dataset", "imagefolder", "--data-dir", str(root), "--methods", "magnitude"],
                   f"1 of 9 images under {root / 'train'} cannot be decoded, e.g. {root / 'train' / 'cat'}/bad0.jpg",
                   tmp_path / "home", capsys)


def test_checkpoint_without_rewind_weights_leaves_lottery_out_of_the_default_methods(files):
    from search.config import load_config

    cfg = load_config(["--model", SPEC, "--checkpoint", str(files / "good.pt")])
    assert "lottery" not in cfg.methods and cfg.methods
    with_rewind = load_config(["--model", SPEC, "--checkpoint", str(files / "good.pt"), "--rewind-checkpoint",
                               str(files / "good.pt")])
    assert "lottery" in with_rewind.methods and with_rewind.lottery_rewind == (0,)


def test_the_checkpoints_content_keys_the_baseline_cache(files):
    from trainables.baseline import BaselineSpec
    from trainables.data import load_dataset

    data = load_dataset("digits", None, files)
    copy = files / "renamed.pt"
    copy.write_bytes((files / "good.pt").read_bytes())

    def key(path: Path) -> str:
        return BaselineSpec(SPEC, 1, 0.1, 64, 0, False, (), checkpoint=str(path)).key(data)

    assert key(files / "good.pt") == key(copy)  # same content, another name: the same baseline
    assert key(files / "good.pt") != key(files / "nested.pt")  # other bytes: another baseline


def test_checkpoint_nested_under_model_or_state_dict_loads(files):
    from trainables.checkpoint import check_fits

    model = build(10)
    for name in ("good.pt", "nested.pt"):
        state = check_fits(model, files / name)
        assert state.keys() == model.state_dict().keys()


def test_factory_gets_num_classes_and_a_file_spec_is_made_absolute(files, monkeypatch):
    from search.config import load_config
    from trainables.models import build_model

    monkeypatch.chdir(files)
    cfg = load_config(["--model", "factories.py:linear"])
    assert cfg.model == f"{files}/factories.py:linear"
    model = build_model(cfg.model, 1, 7, 8)
    assert isinstance(model, nn.Linear) and model.out_features == 7


def test_api_turns_a_module_into_its_class_and_a_checkpoint(tmp_path):
    from search import api
    from tests.search.byo_model import TinyNet

    model = TinyNet(10)
    argv = api._model_args(model, tmp_path)
    assert argv[:2] == ["--model", "tests.search.byo_model:TinyNet"]
    saved = torch.load(argv[3], weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_api_rejects_a_lambda_and_data_it_cannot_store(tmp_path):
    from search import api
    from search.config import ConfigError

    with pytest.raises(ConfigError, match="not a lambda"):
        api.factory_spec(lambda num_classes: build(num_classes))
    with pytest.raises(ConfigError, match=r"outside \[0, 1\]"):
        api.write_splits(tmp_path, {"train": (torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]))})
    with pytest.raises(ConfigError, match=r"labels \[1\] never occur"):
        api.write_splits(tmp_path, {"train": (torch.rand(4, 1, 8, 8), torch.tensor([0, 2, 0, 2]))})


def test_factory_code_is_shipped_to_a_joined_clusters_workers(files, monkeypatch):
    """On --address, the factory's file goes into the job's runtime_env py_modules; an installed
    package (torchvision) is not shipped; a local Ray gets nothing (same files)."""
    import ray

    from search import cluster
    from trainables.models import factory_code

    assert factory_code(f"{files}/factories.py:linear") == files / "factories.py"
    assert factory_code("torchvision.models:resnet18") is None and factory_code("simplecnn") is None
    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.update(kw))
    cluster.start_ray("127.0.0.1:6379", [str(files / "factories.py")])
    assert seen["runtime_env"] == {"py_modules": [str(files / "factories.py")]}
