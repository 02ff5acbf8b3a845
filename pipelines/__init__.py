"""Pipeline layer: stages as datatrove steps, assembly from manifests, executors (local or Ray)."""

from pipelines import logs as _logs  # noqa: F401  (console log level for datatrove tasks, in every worker)
