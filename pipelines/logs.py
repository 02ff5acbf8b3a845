"""Console logging for datatrove tasks: warnings only unless verbose; full task logs stay on disk.

datatrove's task logger always prints INFO to the console. Importing this module (``pipelines`` does)
wraps it so the console level follows ``MATHCORPUS_CONSOLE_LOG_LEVEL``, an environment variable that
multiprocessing and Ray workers inherit; every worker imports ``pipelines`` when it unpickles a step.
"""

from __future__ import annotations

import os
import sys

import datatrove.executor.base as _dt_base
from loguru import logger

_NOISE = ("Logging directory points to a local filesystem",)


def _console_filter(record) -> bool:
    return not any(n in record["message"] for n in _NOISE)


def quiet_logs(verbose: bool = False) -> None:
    """Set the console log level for this process and every worker it starts."""
    level = "INFO" if verbose else "WARNING"
    os.environ["LOGURU_LEVEL"] = level
    os.environ["MATHCORPUS_CONSOLE_LOG_LEVEL"] = level
    logger.remove()
    logger.add(sys.stderr, level=level, filter=_console_filter, format="{level}: {message}")


_datatrove_add_task_logger = getattr(_dt_base.add_task_logger, "__wrapped__", _dt_base.add_task_logger)


def _task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1):
    level = os.environ.get("MATHCORPUS_CONSOLE_LOG_LEVEL")
    if not level:
        return _datatrove_add_task_logger(logging_dir, rank, local_rank, node_rank)
    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    logger.add(sys.stderr, level=level, filter=_console_filter, format="{level}: {message}")
    logger.add(logfile, level="DEBUG")
    logger.info(f"Launching pipeline for {rank=}")
    return logfile


_task_logger.__wrapped__ = _datatrove_add_task_logger
_dt_base.add_task_logger = _task_logger
