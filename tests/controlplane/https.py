"""JSON over HTTPS to a test control plane's components (standard library only)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class Https:
    """Minimal JSON-over-HTTPS client with the admin certificate (standard library only)."""

    def __init__(self, ca: Path, cert: Path, key: Path) -> None:
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.ctx.load_cert_chain(str(cert), str(key))

    def request(
        self,
        url: str,
        method: str = "GET",
        body: dict[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> tuple[int, Any]:
        """Return (status, parsed JSON or text); status 0 when the server cannot be reached."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - https only
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:  # noqa: S310
                status: int = resp.status
                raw: bytes = resp.read()
        except urllib.error.HTTPError as err:
            status = err.code
            raw = err.read()
            err.close()
        except (OSError, ssl.SSLError):
            return 0, None
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


def etcd_healthy(client_url: str) -> bool:
    """etcd's /health says healthy (plain HTTP on 127.0.0.1)."""
    try:
        with urllib.request.urlopen(f"{client_url}/health", timeout=2) as resp:  # noqa: S310
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("health") == "true"
