"""``--env-from``: the user's Secrets and ConfigMaps, checked before a run and, locally, read.

In a cluster the kubelet reads them for the pods (``envFrom``); kubeswarm only checks, before
creating anything, that each exists and that it may read it, so a typo is exit 2 instead of pods
stuck in CreateContainerConfigError. A local run (``run --local``) reads each once through the
same client and hands the keys to the Locust processes. Values are returned to the caller and
never put into a message: errors name the object, warnings the keys.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.config.env import EnvRef, usable_keys
from harness.errors import NotFound, PermissionDenied, UsageError
from harness.kube.api import Body
from harness.kube.client import KubeClient, connect


def check_env_refs(kube: KubeClient, namespace: str, refs: Sequence[EnvRef]) -> list[Body]:
    """Each referenced object as the API server returns it; ``UsageError`` naming every one that
    is missing or unreadable, in one line."""
    found, problems = [], []
    for ref in refs:
        try:
            found.append(kube.get(ref.api_kind, ref.name, namespace))
        except NotFound:
            problems.append(f"{ref} does not exist")
        except PermissionDenied:
            problems.append(f"{ref} cannot be read (get {ref.api_kind.lower()}s is not allowed)")
    if problems:
        hint = ""
        if any("cannot be read" in p for p in problems):
            hint = (
                " (kubeswarm render --rbac"
                + "".join(f" --env-from {r}" for r in refs)
                + f" -n {namespace} | kubectl apply -f - grants the reads)"
            )
        raise UsageError(f"--env-from in namespace {namespace}: {'; '.join(problems)}{hint}")
    return found


def object_env(ref: EnvRef, obj: Mapping[str, object]) -> dict[str, str]:
    """Every key of a Secret (base64 ``data``, decoded) or ConfigMap (``data``) with its value.
    A ConfigMap's ``binaryData`` is not text and, as for the kubelet, no variable."""
    data = obj.get("data") or {}
    if not isinstance(data, Mapping):
        raise UsageError(f"--env-from {ref}: its data is not a mapping")
    if ref.kind == "configmap":
        return {str(k): str(v) for k, v in data.items()}
    values = {}
    for key, encoded in data.items():
        try:
            values[str(key)] = base64.b64decode(str(encoded), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as e:
            raise UsageError(f"--env-from {ref}: the value of {key} is not UTF-8 text") from e
    return values


def read_env_from(
    kube: KubeClient, namespace: str, refs: Sequence[EnvRef], warn: Callable[[str], None]
) -> dict[str, str]:
    """Name -> value from every referenced object, later ones winning; keys that cannot be
    variables are skipped and named in a warning, as the kubelet skips them."""
    merged: dict[str, str] = {}
    for ref, obj in zip(refs, check_env_refs(kube, namespace, refs), strict=True):
        usable, skipped = usable_keys(object_env(ref, obj))
        if skipped:
            warn(
                f"warning: --env-from {ref}: key(s) {', '.join(skipped)} are not valid "
                "variable names and are not set"
            )
        merged.update(usable)
    return merged


def local_env_from(
    refs: Sequence[EnvRef],
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    warn: Callable[[str], None],
) -> dict[str, str]:
    """``--env-from`` of a local run: the objects read once through the kubeconfig (``UsageError``
    when there is none usable); {} without references."""
    if not refs:
        return {}
    try:
        kube = connect(kubeconfig, context, namespace, warn=warn)
    except UsageError as e:
        raise UsageError(f"--env-from reads from the cluster, but: {e}") from e
    try:
        return read_env_from(kube, namespace or kube.namespace, refs, warn)
    finally:
        kube.close()
