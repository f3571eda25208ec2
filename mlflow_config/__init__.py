"""MLflow layout: tracking URI resolution, experiment / parent / child runs, artifacts.

Stands apart: it imports none of search, trainables or pruners. Everything goes through an
explicit `MlflowClient`, never the fluent API's process-global active run, so Ray workers and
the driver can log concurrently without swapping globals.
"""
