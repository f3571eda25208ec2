"""The driver: CLI, config, search space, Optuna + Ray Tune wiring, Pareto fronts, reports."""
