"""The project's exceptions and the one mapping from them to exit codes.

    KubeswarmError                 any failure the CLI turns into a message and an exit code
    ├── UsageError                 bad input: flags, config file, locustfile, watch syntax   -> 2
    ├── ClusterError               the Kubernetes API refused or failed                      -> 3
    │   ├── PermissionDenied       a verb on a resource is not allowed (names both)
    │   └── NotFound               a namespace, HPA or Deployment does not exist
    ├── LoadGeneratorError         Locust did not start, workers did not connect, ...        -> 3
    └── RunDirectoryError          the run directory cannot be written (disk full, read-only) -> 3

An SLO that fails is not an exception: the report's verdict maps to exit code 1 (so does an
``incomplete`` verdict: a run that did not finish cannot pass).

    KeyboardInterrupt              Ctrl-C: the run stops, is reported, and exits 130
    └── Terminated                 SIGTERM, which takes the same path and exits 143
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_SLO_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_CLUSTER: Final = 3
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_TERMINATED: Final = 143  # 128 + SIGTERM, as a shell reports a cancelled CI job


class KubeswarmError(Exception):
    """Base class: ``str(error)`` is the one line shown to the user."""

    exit_code: int = EXIT_CLUSTER


class UsageError(KubeswarmError):
    exit_code = EXIT_USAGE


class ClusterError(KubeswarmError):
    exit_code = EXIT_CLUSTER


class PermissionDenied(ClusterError):
    pass


class NotFound(ClusterError):
    pass


class LoadGeneratorError(KubeswarmError):
    exit_code = EXIT_CLUSTER


class RunDirectoryError(KubeswarmError):
    exit_code = EXIT_CLUSTER


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so both stop a run the same way; only the exit code
    differs (143, not 130), as a CI system that cancelled the job expects."""


def interrupted_exit(error: BaseException | None) -> int:
    """The exit code of an interrupted run: 143 after SIGTERM, else 130."""
    return EXIT_TERMINATED if isinstance(error, Terminated) else EXIT_INTERRUPTED
