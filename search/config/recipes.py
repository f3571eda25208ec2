"""Per-dataset training defaults: what a setting left at 0 / auto becomes."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    baseline_epochs: float
    finetune_epochs: float
    augment: bool
    baseline_schedule: str


# CIFAR-10: random crop + flip and a one-cycle schedule; without them the dense model overfits
# (~71% val after 15 epochs on 45k images instead of ~80%) and pruning looks free. Digits'
# 8x8 images are too small to crop, and a cosine schedule trains them well.
AUTO_RECIPE = {"digits": Recipe(30, 3, False, "cosine"), "cifar10": Recipe(15, 2, True, "onecycle"),
               # The user's images: no crop or flip unless asked (a flip can change what an image means).
               "imagefolder": Recipe(15, 2, False, "cosine")}
