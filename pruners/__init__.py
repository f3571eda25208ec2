"""Pruning methods. Import `pruners.registry` to get every method registered by name.

Nothing here imports Ray or MLflow: pruners run and test without a cluster.
"""
