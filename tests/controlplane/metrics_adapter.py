"""Writing metric values into the test control plane's metrics adapter.

The adapter (`tests/cluster/controlplane/adapter`, built on sigs.k8s.io/custom-metrics-apiserver)
serves external.metrics.k8s.io and custom.metrics.k8s.io through the API server's aggregation
layer, as KEDA or prometheus-adapter do in a real cluster; a value written here is what the HPA
controller reads from then on.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricsAdapter:
    """The adapter's plain-HTTP write endpoint, on 127.0.0.1."""

    write_url: str

    def set_external(
        self, namespace: str, metric: str, value: str, labels: Mapping[str, str] | None = None
    ) -> None:
        """From now on, External metric `metric` in `namespace` (for selectors matching
        `labels`) is the quantity `value` (e.g. "340", "2500m")."""
        query = ""
        if labels:
            query = "?" + urllib.parse.urlencode(
                {"labels": ",".join(f"{k}={v}" for k, v in labels.items())}
            )
        path = f"/write-external-metrics/namespaces/{namespace}/{metric}{query}"
        self._post(path, value)

    def set_object(self, namespace: str, resource: str, name: str, metric: str, value: str) -> None:
        """From now on, custom metric `metric` of object RESOURCE/NAME (an HPA's Object metric,
        e.g. resource "services") is the quantity `value`."""
        self._post(f"/write-metrics/namespaces/{namespace}/{resource}/{name}/{metric}", value)

    def _post(self, path: str, value: str) -> None:
        request = urllib.request.Request(  # noqa: S310 - 127.0.0.1 only
            self.write_url + path,
            data=json.dumps(value).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
            if resp.status != 200:
                raise RuntimeError(f"writing {path} to the metrics adapter: HTTP {resp.status}")
