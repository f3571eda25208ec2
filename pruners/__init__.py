"""Pruning methods, composed the way Torch-Pruning separates concerns. Import
`pruners.registry` to get every method registered by name.

Three layers, each a module, none importing a method:
- importance (`importance.py`): how a weight or a channel scores: |w|, LAMP, Taylor (per weight
  g*w, per filter (sum g*w)^2, summed over a coupled group), FPGM's distance to the geometric median;
- allocation (`allocation.py`): how many go and from which layer: for weights per-layer ratios, one
  global threshold, LAMP, ERK; for channels per-layer ratios or one normalized global ranking,
  decided per group of tied channels, never on the classifier's outputs (`filter_groups` is the
  one place that says which layers lose filters);
- application: masks that zero single weights (`masking.py`), or physical removal of channels
  through the dependency graph (`surgery.py`, with `graph.py` saying what it can prune).

A method (`magnitude.py`, `taylor.py`, `fpgm.py`, `lottery.py`, `hybrid.py`) is a short
composition of the three plus its settings dataclass (`settings.py`) and `@register`
(`registry.py`); no method module imports another. Shared types are in `base.py`, int8 in
`quantize.py`.

Nothing here imports Ray or MLflow: pruners run and test without a cluster.
"""
