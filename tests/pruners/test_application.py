"""Application: masks zero single weights and keep shapes; surgery removes whole channels, with
what each group's members lose, and the kept indices it returns rebuild the model."""
from __future__ import annotations

import torch
from torch import nn

from pruners.allocation import filter_groups
from pruners.masking import apply_masks, bind_masks
from pruners.surgery import rebuild, remove_group_channels
from trainables.models import build_model


def test_masks_zero_exactly_the_dropped_weights_and_keep_shapes():
    layer = nn.Linear(3, 2)
    before = layer.weight.detach().clone()
    mask = torch.tensor([[True, False, True], [False, True, True]])
    reapply = bind_masks(layer, {"weight": mask})
    reapply()
    assert layer.weight.shape == (2, 3) and torch.equal(layer.weight.detach(), before * mask)
    with torch.no_grad():
        layer.weight.add_(1.0)  # an optimizer step revives the pruned weights...
    apply_masks(layer, {"weight": mask})
    assert torch.all(layer.weight[~mask] == 0)  # ...and the masks zero them again


def test_remove_group_channels_follows_the_roots_and_its_kept_indices_rebuild_the_model():
    torch.manual_seed(0)
    dense, x = build_model("resnet20", 1, 10, 8).eval(), torch.randn(2, 1, 8, 8)
    model = build_model("resnet20", 1, 10, 8).eval()
    model.load_state_dict(dense.state_dict())
    groups = filter_groups(model, [n for n, _ in model.named_modules()], x)
    root_drop = {g.root: [0, g.size - 1] if i % 2 else [] for i, g in enumerate(groups)}  # some groups untouched
    kept = remove_group_channels(model, groups, root_drop, x)
    assert set(kept) == {m for g in groups for m in g.members}  # untouched layers recorded too
    for g in groups:
        assert all(kept[m] == kept[g.root] for m in g.members)
        assert kept[g.root] == [c for c in range(g.size) if c not in root_drop[g.root]]
    rebuilt = rebuild(dense, kept, x)
    assert all(torch.equal(v, rebuilt.state_dict()[k]) for k, v in model.state_dict().items())
