"""kubeswarm's harness: CLI, configuration, run lifecycle (local, cluster), samplers, run store.

The harness never imports Locust: Locust always runs as its own processes or pods, driven by flags
and read through its web API and CSV files.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kubeswarm")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
