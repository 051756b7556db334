"""The Kubernetes adapter: the only module of kubeswarm that imports the ``kubernetes`` client.

It uses the client for what it does well (reading kubeconfig files and in-cluster credentials,
TLS and token refresh) and sends every request itself, through the client's own connection pool:
the generated methods deserialize into model classes we do not need (a 500-pod list costs more to
deserialize than to fetch), and the generated service-proxy method percent-encodes ``:`` and ``/``
and returns a repr'd string. Results are the API server's JSON as plain dicts (``Body``); failures
become the project's exceptions with a message naming what was refused and how to fix it:

    401        ClusterError      the credentials were rejected
    403        PermissionDenied  names the verb, the resource and the namespace
    404        NotFound          names the object (or the API that is not served)
    429, 5xx,  retried with exponential backoff and full jitter (``RetryPolicy``), then
    timeouts   ClusterError naming the API server and the last failure
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import urllib3
import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException

from harness.errors import ClusterError, NotFound, UsageError
from harness.kube.api import (
    DEFAULT_RETRY,
    PROXY_RETRY,
    RESOURCES,
    RETRYABLE_STATUS,
    Body,
    Connection,
    Operation,
    Response,
    RetryPolicy,
    error_for,
    proxy_path,
    retry_after_s,
    split_query,
    status_message,
)

IN_CLUSTER_NAMESPACE_FILE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass
class KubeClient:
    """One cluster connection; safe to share between threads (urllib3's pool is)."""

    api_client: Any  # kubernetes.client.ApiClient: untyped, kept behind this class
    connection: Connection
    retry: RetryPolicy = DEFAULT_RETRY
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    warn: Callable[[str], None] = lambda _text: None
    # Requests sent, retries included: the sampler benchmark reads it.
    calls: int = 0
    _metrics_warned: bool = False

    @property
    def namespace(self) -> str:
        return self.connection.namespace

    def close(self) -> None:
        self.api_client.close()

    # -------------------------------------------------------------- sending

    def request(
        self,
        method: str,
        path: str,
        op: Operation,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Body | None = None,
        raw_body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        accept_status: Sequence[int] = (),
    ) -> Response:
        """One API request with retries; raises the mapped exception unless the status is 2xx/3xx
        or listed in ``accept_status``."""
        policy = retry or self.retry
        payload = raw_body if body is None else json.dumps(body).encode()
        last_failure = ""
        retry_after: float | None = None
        for attempt in range(policy.attempts):
            if attempt:
                self.sleep(policy.delay_s(attempt - 1, self.rng, retry_after))
            retry_after = None
            try:
                response = self._send(
                    method,
                    path,
                    query=query,
                    payload=payload,
                    headers=headers,
                    timeout_s=policy.timeout_s,
                    json_body=body is not None,
                )
            except urllib3.exceptions.SSLError as e:
                raise ClusterError(
                    f"TLS to {self.connection.host} failed: {e}; check the "
                    "kubeconfig's certificate-authority"
                ) from e
            except (urllib3.exceptions.HTTPError, OSError) as e:
                last_failure = f"{type(e).__name__}: {e}"
                continue
            if response.status < 400 or response.status in accept_status:
                return response
            if response.status not in RETRYABLE_STATUS:
                raise error_for(response.status, response.data, op, self.connection)
            retry_after = retry_after_s(response.headers)
            last_failure = f"{response.status}: {status_message(response.data)}"
        raise ClusterError(
            f"{op.verb} {op.subject()} failed {policy.attempts} times on "
            f"{self.connection.host}; last: {last_failure}"
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]],
        payload: bytes | None,
        headers: Mapping[str, str] | None,
        timeout_s: float,
        json_body: bool,
    ) -> Response:
        header_params = {"Accept": "application/json"}
        if json_body:
            header_params["Content-Type"] = "application/json"
        header_params.update(headers or {})
        _, url, header_params, _, _ = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query) or None,
            header_params=header_params,
            auth_settings=["BearerToken"],
        )
        self.calls += 1
        raw = self.api_client.rest_client.pool_manager.request(
            method,
            url,
            body=payload,
            headers=header_params,
            retries=False,
            redirect=False,
            preload_content=True,
            timeout=urllib3.Timeout(connect=min(10.0, timeout_s), read=timeout_s),
        )
        return Response(int(raw.status), dict(raw.headers), bytes(raw.data))

    # -------------------------------------------------------------- objects

    def get(self, kind: str, name: str, namespace: str | None = None) -> Body:
        resource = RESOURCES[kind]
        ns = namespace or self.namespace
        op = Operation("get", resource.described, ns if resource.namespaced else None, name)
        return self.request("GET", resource.path(ns, name), op).json()

    def list_objects(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Body]:
        """Items of one list call (the API server's JSON objects, camelCase keys)."""
        resource = RESOURCES[kind]
        ns = namespace or self.namespace
        query = [("labelSelector", label_selector)] if label_selector else []
        if field_selector:
            query.append(("fieldSelector", field_selector))
        op = Operation("list", resource.described, ns if resource.namespaced else None)
        items = self.request("GET", resource.path(ns), op, query=query).json().get("items")
        return list(items or [])

    def list_pod_metrics(self, namespace: str, label_selector: str | None) -> list[Body] | None:
        """PodMetrics of matching pods; None (and one warning) if metrics.k8s.io is not served."""
        try:
            return self.list_objects("PodMetrics", namespace, label_selector)
        except NotFound:
            if not self._metrics_warned:
                self._metrics_warned = True
                self.warn(
                    "warning: the metrics API (metrics.k8s.io) is not served by this "
                    "cluster: recording replicas only, no pod CPU/memory usage (install "
                    "metrics-server to get them)"
                )
            return None

    def metrics_api_available(self) -> bool:
        response = self.request(
            "GET",
            "/apis/metrics.k8s.io/v1beta1",
            Operation("get", "the metrics API"),
            accept_status=(404, 503),
        )
        return response.status < 400

    def create(self, body: Body, namespace: str | None = None) -> Body:
        """Creates an object; a create that was retried and finds its object already there (the
        first attempt did land) returns that object."""
        resource = RESOURCES[str(body["kind"])]
        ns = namespace or body.get("metadata", {}).get("namespace") or self.namespace
        name = str(body.get("metadata", {}).get("name", ""))
        op = Operation("create", resource.described, ns, name or None)
        response = self.request("POST", resource.path(ns), op, body=body, accept_status=(409,))
        if response.status == 409:
            existing = self.get(resource.kind, name, ns)
            labels = existing.get("metadata", {}).get("labels") or {}
            wanted = body.get("metadata", {}).get("labels") or {}
            if all(labels.get(k) == v for k, v in wanted.items()):
                return existing
            raise error_for(409, response.data, op, self.connection)
        return response.json()

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """Deletes with propagation Background (a Job's pods go too); False if already gone."""
        resource = RESOURCES[kind]
        ns = namespace or self.namespace
        op = Operation("delete", resource.described, ns, name)
        response = self.request(
            "DELETE",
            resource.path(ns, name),
            op,
            body={"propagationPolicy": "Background"},
            accept_status=(404,),
        )
        return response.status != 404

    def can_i(
        self,
        verb: str,
        resource: str,
        namespace: str | None,
        group: str = "",
        subresource: str = "",
    ) -> bool:
        """SelfSubjectAccessReview: may the current user do this?"""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "verb": verb,
                    "resource": resource,
                    "group": group,
                    "subresource": subresource,
                    "namespace": namespace or "",
                }
            },
        }
        op = Operation("create", "selfsubjectaccessreviews.authorization.k8s.io")
        answer = self.request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", op, body=review
        ).json()
        return bool(answer.get("status", {}).get("allowed"))

    def server_version(self) -> str:
        """The API server's gitVersion; ``UsageError`` when the kubeconfig's server answers but
        is not a Kubernetes API server (a 404 or a page without a version: a wrong URL)."""
        response = self.request(
            "GET", "/version", Operation("get", "the server version"), accept_status=(404,)
        )
        try:
            answer = response.json() if response.status == 200 else {}
        except ValueError:  # HTML or other text: some web server, not an API server
            answer = {}
        version = answer.get("gitVersion")
        if not isinstance(version, str) or not version:
            context = self.connection.context or "in-cluster"
            raise UsageError(
                f"the server at {self.connection.host} is not a Kubernetes API server (GET "
                f"/version answered {response.status} without a version); check the server of "
                f"context {context} in the kubeconfig"
            )
        return version

    # -------------------------------------------------------------- service proxy

    def proxy(
        self,
        method: str,
        namespace: str,
        service: str,
        port: int,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        retry: RetryPolicy = PROXY_RETRY,
    ) -> bytes:
        """GET or POST (form) to a Service's port through the API server's service proxy."""
        from urllib.parse import urlencode

        body = urlencode(dict(form or {})).encode() if method == "POST" else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        response = self.proxy_raw(
            method, namespace, service, port, path, body=body, headers=headers, retry=retry
        )
        if response.status >= 400:
            raise ClusterError(
                f"{method} {path} on {service}:{port} through the API server "
                f"answered {response.status}: {status_message(response.data)}"
            )
        return response.data

    def proxy_raw(
        self,
        method: str,
        namespace: str,
        service: str,
        port: int,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy = PROXY_RETRY,
    ) -> Response:
        """Any request through the service proxy; every answer of the backend is returned as is
        (a 404 of Locust is the browser's business), but a refused proxy raises."""
        op = Operation(
            "get" if method in ("GET", "HEAD") else "create",
            "services/proxy",
            namespace,
            f"{service}:{port}",
        )
        path_part, _, query_text = path.partition("?")
        url_path = proxy_path(namespace, service, port, path_part)
        query = split_query(query_text)
        response = self.request(
            method,
            url_path,
            op,
            query=query,
            raw_body=body,
            headers=headers,
            retry=retry,
            accept_status=tuple(range(400, 600)),
        )
        if response.status in (401, 403) and _is_api_status(response):
            raise error_for(response.status, response.data, op, self.connection)
        return response

    def pod_log(
        self, name: str, namespace: str, container: str, *, since_s: int | None = None
    ) -> str:
        """One container's log, each line led by its RFC 3339 time; only the last ``since_s``
        seconds when given."""
        resource = RESOURCES["Pod"]
        op = Operation("get", "pods/log", namespace, name)
        query = [("container", container), ("timestamps", "true")]
        if since_s is not None:
            query.append(("sinceSeconds", str(max(1, since_s))))
        # The answer is plain text, but the API server refuses an Accept of text/plain (406).
        response = self.request("GET", f"{resource.path(namespace, name)}/log", op, query=query)
        return response.data.decode("utf-8", errors="replace")

    # -------------------------------------------------------------- disruptions

    def delete_pod(self, name: str, namespace: str, grace_period_s: int | None) -> bool:
        """Deletes one pod (``--chaos``): with its own terminationGracePeriodSeconds when
        ``grace_period_s`` is None, at once with 0; False if it was already gone."""
        op = Operation("delete", "pods", namespace, name)
        body: Body = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period_s is not None:
            body["gracePeriodSeconds"] = grace_period_s
        response = self.request(
            "DELETE", RESOURCES["Pod"].path(namespace, name), op, body=body, accept_status=(404,)
        )
        return response.status != 404

    def scale_job(self, name: str, namespace: str, parallelism: int) -> None:
        """Sets a Job's parallelism (``--workers auto``); its pods start or stop accordingly."""
        op = Operation("patch", "jobs", namespace, name)
        self.request(
            "PATCH",
            RESOURCES["Job"].path(namespace, name),
            op,
            body={"spec": {"parallelism": parallelism}},
            headers={"Content-Type": "application/merge-patch+json"},
        )


def _is_api_status(response: Response) -> bool:
    """Whether an error answer came from the API server itself (a ``Status`` object)."""
    with contextlib.suppress(ValueError):
        body = json.loads(response.data)
        return isinstance(body, dict) and body.get("kind") == "Status"
    return False


# ------------------------------------------------------------------ connecting


def connect(
    kubeconfig: Path | None = None,
    context: str | None = None,
    namespace: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    warn: Callable[[str], None] = lambda _text: None,
) -> KubeClient:
    """A client for ``--kubeconfig``/``$KUBECONFIG``/``~/.kube/config`` (with ``--context``), or
    the pod's service account when running inside a cluster. The namespace is ``-n``, else the
    context's, else the pod's, else ``default``."""
    env = os.environ if environ is None else environ
    configuration = Configuration()
    source = _kubeconfig_source(kubeconfig, env)
    if source is None:
        if not env.get("KUBERNETES_SERVICE_HOST"):
            raise UsageError(
                "no kubeconfig: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config "
                "(e.g. `kind export kubeconfig`)"
            )
        try:
            kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except ConfigException as e:
            raise UsageError(f"in-cluster configuration failed: {e}") from e
        ns = namespace or _in_cluster_namespace()
        conn = Connection(configuration.host, None, ns, None, in_cluster=True)
    else:
        conn = _load_kubeconfig(source, context, namespace, configuration)
    insecure = not configuration.verify_ssl
    if insecure:
        _accept_insecure(conn.host, warn)
    conn = Connection(conn.host, conn.context, conn.namespace, conn.user, conn.in_cluster, insecure)
    return KubeClient(ApiClient(configuration), conn, retry=retry, warn=warn)


def _accept_insecure(host: str, warn: Callable[[str], None]) -> None:
    """The user chose insecure-skip-tls-verify: say so once, instead of urllib3's warning on
    every request. Only that warning, and only for this API server, is filtered (a filter, not a
    ``catch_warnings`` block, because the UI proxy sends from several threads)."""
    from urllib.parse import urlsplit

    hostname = urlsplit(host).hostname or host
    warn(f"warning: TLS verification of {host} is off (insecure-skip-tls-verify in the kubeconfig)")
    warnings.filterwarnings(
        "ignore",
        category=urllib3.exceptions.InsecureRequestWarning,
        message=re.escape(f"Unverified HTTPS request is being made to host '{hostname}'"),
    )


def _kubeconfig_source(kubeconfig: Path | None, env: Mapping[str, str]) -> str | None:
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise UsageError(f"kubeconfig {kubeconfig} does not exist")
        return str(kubeconfig)
    if env.get("KUBECONFIG"):
        return env["KUBECONFIG"]
    default = Path(env.get("HOME", "~")).expanduser() / ".kube" / "config"
    return str(default) if default.is_file() else None


def _load_kubeconfig(
    source: str, context: str | None, namespace: str | None, configuration: Any
) -> Connection:
    for path in source.split(os.pathsep):
        _check_kubeconfig_file(Path(path))
    try:
        contexts, current = kube_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=source
        )
    except (ConfigException, OSError) as e:
        raise UsageError(f"cannot read kubeconfig {source}: {_first_line(e)}") from e
    except Exception as e:
        # The loader walks the YAML as dicts and fails with whatever a wrong shape raises
        # (TypeError, AttributeError, KeyError); each is a malformed kubeconfig to the user.
        raise UsageError(
            f"kubeconfig {source} is not a valid kubeconfig ({type(e).__name__}: "
            f"{_first_line(e)}); check it with kubectl config view"
        ) from e
    by_name = {c["name"]: c for c in contexts or []}
    chosen_name = context or (current or {}).get("name")
    if chosen_name not in by_name:
        known = ", ".join(sorted(by_name)) or "none"
        what = f"context {context!r} is not" if context else "no current context is set"
        raise UsageError(f"{what} in kubeconfig {source}; contexts: {known} (pass --context)")
    details = by_name[chosen_name].get("context") or {}
    try:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=source,
            context=chosen_name,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, OSError, ValueError) as e:
        raise UsageError(f"kubeconfig {source}, context {chosen_name}: {_first_line(e)}") from e
    except Exception as e:  # as above: a malformed cluster or user entry
        raise UsageError(
            f"kubeconfig {source}, context {chosen_name} is not valid ({type(e).__name__}: "
            f"{_first_line(e)}); check it with kubectl config view"
        ) from e
    ns = namespace or details.get("namespace") or "default"
    return Connection(configuration.host, chosen_name, ns, details.get("user"))


def _check_kubeconfig_file(path: Path) -> None:
    """A kubeconfig must be readable UTF-8 YAML holding a mapping; said in one line, before the
    client's loader turns anything else into a long traceback."""
    if not path.is_file():
        return  # $KUBECONFIG may list files that do not exist; the loader skips them
    try:
        loaded = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read kubeconfig {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"kubeconfig {path} is not UTF-8 text (is it the right file?)") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"kubeconfig {path} is not valid YAML{where}") from e
    if not isinstance(loaded, dict):
        raise UsageError(
            f"kubeconfig {path} is not a kubeconfig (expected a mapping with clusters, users "
            "and contexts)"
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _in_cluster_namespace() -> str:
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"
