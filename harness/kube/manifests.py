"""The Kubernetes objects of a run, as data: the YAML of ``k8s-jobs/`` loaded and patched.

The manifests stay files a person can read, review and ``kubectl apply -k``; this module changes
only what a run decides: names, labels, flag values, image, resources, scheduling, the files in
the ConfigMap and the ownerReferences. Every function takes plain dicts and returns new ones; it
sends nothing anywhere (that is ``harness.kube``) and never imports the ``kubernetes`` client.

Creation order, and why the master Job comes first: every other object of a run carries an
ownerReference to the master Job (``with_owner``), which needs the Job's uid, known only once the
API server created it. Created first, the master Job (which has ``activeDeadlineSeconds`` and
``ttlSecondsAfterFinished``) is the only object that ever exists without an owner, so a harness
killed between two creations leaves nothing behind without a deadline. Its pod waits in
ContainerCreating until the ConfigMap it mounts exists, a second later.

Requirements (``--requirement``) are written to the ConfigMap; an init container pip installs
them into an emptyDir that the Locust container has first on ``PYTHONPATH`` (the image runs as
non-root and cannot change its own environment). A run without requirements has no init container.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import math
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from harness.config.env import REDACTED, EnvRef, RunEnv
from harness.config.options import WORKER_MEMORY_MI_PER_PROCESS
from harness.config.run import RunConfig
from harness.errors import UsageError
from harness.resources import shipped_dir
from harness.session.plan import LoadPlan, locust_flags, plan_for

RUN_LABEL: Final = "kubeswarm.io/run"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
NAME_LABEL: Final = "app.kubernetes.io/name"
ZMQ_PORT: Final = 5557
WEB_PORT: Final = 8089
# Kubernetes refuses a ConfigMap or Secret whose values add up to more than 1 MiB
# (core.MaxSecretSize).
CONFIGMAP_LIMIT_BYTES: Final = 1024 * 1024
REQUIREMENTS_KEY: Final = "kubeswarm-requirements.txt"

_MAX_NAME: Final = 63  # a Service name is an RFC 1035 label; Job names end up in pod labels
_LONGEST_SUFFIX: Final = len("-master")
_LABEL_VALUE: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_CONFIGMAP_KEY: Final = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_FILES_VOLUME: Final = "files"
_ENV_FROM_KEYS: Final = {"secret": "secretRef", "configmap": "configMapRef"}


@dataclass(frozen=True)
class RunObjectNames:
    """Names of a run's objects: DNS-safe, at most 63 characters, derived from the run id only."""

    configmap: str
    secret: str  # the values of --env and --env-file
    service: str
    master_job: str
    worker_job: str


def object_names(run_id: str) -> RunObjectNames:
    """``ks-<run-id>-master`` and friends; a long or unusual run id is cut and given a hash."""
    _check_run_id(run_id)
    base = f"ks-{run_id}"
    cleaned = re.sub(r"[^a-z0-9-]+", "-", base.lower())
    if cleaned != base or len(base) + _LONGEST_SUFFIX > _MAX_NAME:
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
        room = _MAX_NAME - _LONGEST_SUFFIX - len(digest) - 1
        base = f"{cleaned[:room].rstrip('-')}-{digest}"
    return RunObjectNames(
        configmap=f"{base}-files",
        secret=f"{base}-env",
        service=f"{base}-master",
        master_job=f"{base}-master",
        worker_job=f"{base}-worker",
    )


def run_selector(run_id: str) -> str:
    """Label selector of every object and pod of one run."""
    return f"{RUN_LABEL}={run_id}"


def job_deadline_s(config: RunConfig) -> int:
    """The Jobs' activeDeadlineSeconds: ``--deadline``, else run time + autoquit + start margin."""
    return plan_for(config).deadline_s


def worker_resources(config: RunConfig) -> dict[str, dict[str, str]]:
    """Requests equal to limits: one core and 512 MiB per Locust process unless given."""
    cpu = config.worker_cpu or str(config.load.processes)
    memory = config.worker_memory or f"{WORKER_MEMORY_MI_PER_PROCESS * config.load.processes}Mi"
    return _resources(cpu, memory)


def master_resources(config: RunConfig) -> dict[str, dict[str, str]]:
    return _resources(config.master_cpu, config.master_memory)


def run_objects(
    config: RunConfig,
    run_id: str,
    namespace: str,
    plan: LoadPlan | None = None,
    *,
    master_env: Mapping[str, str] | None = None,
    ui_sources: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """All objects of one run in creation order: master Job, the Secret of ``--env`` values (when
    there are any), ConfigMap, Service, the master's NetworkPolicy (unless
    ``--no-network-policy``; its web port open to ``ui_sources``, else to ``--ui-from``), worker
    Job. Both Jobs' Locust containers take ``--env-from`` objects and that Secret by envFrom.

    Raises UsageError when a file cannot be read or the files do not fit in a ConfigMap.
    """
    names = object_names(run_id)
    plan = plan or plan_for(config)
    configmap = _configmap(config, names)
    locustfile_key = next(iter(configmap["data"]))
    master = _master_job(config, plan, names, locustfile_key)
    if master_env:  # e.g. the ramp shape's settings: only the master runs a shape
        locust = next(
            c for c in _containers(master["spec"]["template"]["spec"]) if c["name"] == "locust"
        )
        locust["env"] = [
            *locust.get("env", []),
            *({"name": k, "value": v} for k, v in master_env.items()),
        ]
    service = _service(names)
    worker = _worker_job(config, plan, names, locustfile_key)
    objects = [master, configmap, service, worker]
    if config.env:
        for job in (master, worker):
            _add_env_from(job, config.env, names)
    if config.network_policy:
        sources = config.ui_from if ui_sources is None else ui_sources
        objects.insert(3, _network_policy(names, sources))
    if config.env.values:
        # Right after the master Job: its pods cannot start their container before it exists.
        objects.insert(1, _env_secret(config.env, names))
    for obj in objects:
        _set_namespace(obj, namespace)
        _relabel(obj, run_id)
    return objects


def redacted(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``objects`` with every value of a Secret replaced by ``<redacted>``: what
    ``render`` prints (the keys say which variables the run sets, never what they hold)."""
    shown = [copy.deepcopy(dict(obj)) for obj in objects]
    for obj in shown:
        if obj.get("kind") == "Secret":
            for key in ("stringData", "data"):
                if key in obj:
                    obj[key] = dict.fromkeys(obj[key], REDACTED)
    return shown


def with_owner(obj: dict[str, Any], master_job: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` owned by the master Job, as the API server returned it (with its uid).

    Deleting the master Job, by hand, by its TTL or by ``kubeswarm clean``, then deletes the
    rest. Not ``blockOwnerDeletion``: that needs update on jobs/finalizers, which the Role
    does not grant.
    """
    meta = master_job.get("metadata") or {}
    uid, name = meta.get("uid"), meta.get("name")
    if not uid or not name:
        raise ValueError("with_owner needs the master Job as created (metadata.uid and name)")
    if master_job.get("kind", "Job") != "Job":
        raise ValueError(f"the owner must be the master Job, not a {master_job.get('kind')}")
    owner_namespace = meta.get("namespace")
    namespace = obj.get("metadata", {}).get("namespace")
    if owner_namespace and namespace and owner_namespace != namespace:
        raise ValueError(f"an owner in {owner_namespace} cannot own an object in {namespace}")
    owned = copy.deepcopy(obj)
    references = [
        ref for ref in owned["metadata"].get("ownerReferences", []) if ref.get("uid") != uid
    ]
    references.append({"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid})
    owned["metadata"]["ownerReferences"] = references
    return owned


def rbac_objects(
    namespace: str, *, chaos: bool = False, env_refs: Sequence[EnvRef] = ()
) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding (``k8s-jobs/rbac.yaml``) for ``namespace``; with
    ``chaos`` also the separate Role that lets ``--chaos`` delete pods (``rbac-chaos.yaml``);
    with ``env_refs`` (``--env-from``) the Role may read those Secrets, by name and no other."""
    objects = _load("rbac.yaml") + (_load("rbac-chaos.yaml") if chaos else [])
    secrets = sorted({ref.name for ref in env_refs if ref.kind == "secret"})
    if secrets:
        role = next(o for o in objects if o["kind"] == "Role")
        role["rules"].append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get"],
                "resourceNames": secrets,
            }
        )
    for obj in objects:
        _set_namespace(obj, namespace)
        for subject in obj.get("subjects", []):
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace
    return objects


def kustomization_objects(
    directory: str = ".", namespace: str | None = None
) -> list[dict[str, Any]]:
    """The objects ``kubectl apply -k k8s-jobs/<directory>`` creates, e.g. ``example-target``."""
    listing = yaml.safe_load(_read_text(f"{directory}/kustomization.yaml"))
    objects = [obj for name in listing["resources"] for obj in _load(f"{directory}/{name}")]
    if namespace is not None:
        for obj in objects:
            _set_namespace(obj, namespace)
    return objects


def to_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    """A multi-document YAML stream for ``kubectl apply -f -``; file contents as block text."""
    return yaml.dump_all(
        [_plain(obj) for obj in objects],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        allow_unicode=True,
        width=100,
    )


# --- the run's objects ---------------------------------------------------------------------------


def _configmap(config: RunConfig, names: RunObjectNames) -> dict[str, Any]:
    configmap = _load_one("configmap.yaml", "ConfigMap")
    configmap["metadata"]["name"] = names.configmap
    files = _read_files((config.load.locustfile, *config.extra_files))
    if config.requirements:
        if REQUIREMENTS_KEY in files:
            raise UsageError(f"{REQUIREMENTS_KEY} is kubeswarm's own file name; rename yours")
        files[REQUIREMENTS_KEY] = _requirements_file(config).encode()
    _check_fits(files)
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, content in files.items():
        try:
            text[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode("ascii")
    configmap["data"] = text
    if binary:
        configmap["binaryData"] = binary
    return configmap


def _requirements_file(config: RunConfig) -> str:
    """The init container's ``pip install -r`` file: the index first, then one requirement per
    line (pip reads options such as ``--index-url`` from the file itself)."""
    lines = []
    if config.pip_index_url:
        lines.append(f"--index-url {config.pip_index_url}")
        if config.pip_index_url.startswith("http://"):
            # pip refuses a plain-http index unless its host is trusted.
            host = urllib.parse.urlsplit(config.pip_index_url).hostname
            lines.append(f"--trusted-host {host}")
    return "\n".join([*lines, *config.requirements]) + "\n"


def _read_files(paths: Iterable[Path]) -> dict[str, bytes]:
    """File name -> content; the first path is the locustfile and stays first."""
    files: dict[str, bytes] = {}
    for path in paths:
        key = path.name
        if not _CONFIGMAP_KEY.match(key) or key.startswith(".."):
            raise UsageError(f"{path}: a shipped file name may hold only letters, digits and -._")
        if key in files:
            raise UsageError(f"two shipped files are named {key}; file names must be unique")
        if path.is_dir():
            raise UsageError(f"--extra-file {path} is a directory; ship its files one by one")
        try:
            files[key] = path.read_bytes()
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e.strerror}") from e
    return files


def _check_fits(files: Mapping[str, bytes]) -> None:
    size = sum(len(content) for content in files.values())
    if size > CONFIGMAP_LIMIT_BYTES:
        largest = max(files, key=lambda key: len(files[key]))
        raise UsageError(
            f"the locustfile and extra files are {size / CONFIGMAP_LIMIT_BYTES:.2f} MiB ({size} "
            f"bytes; largest {largest}, {len(files[largest])} bytes), more than the 1 MiB "
            f"({CONFIGMAP_LIMIT_BYTES} bytes) a ConfigMap holds: put large data in the image "
            "(--image) or let the locustfile download it"
        )


def _env_secret(env: RunEnv, names: RunObjectNames) -> dict[str, Any]:
    secret = _load_one("secret.yaml", "Secret")
    secret["metadata"]["name"] = names.secret
    secret["stringData"] = env.as_mapping()
    size = sum(len(k) + len(v.encode()) for k, v in secret["stringData"].items())
    if size > CONFIGMAP_LIMIT_BYTES:  # the same 1 MiB bound holds for a Secret
        raise UsageError(
            f"the --env and --env-file values are {size} bytes, more than the 1 MiB "
            f"({CONFIGMAP_LIMIT_BYTES} bytes) a Secret holds: ship large data as a file "
            "(--extra-file)"
        )
    return secret


def _add_env_from(job: dict[str, Any], env: RunEnv, names: RunObjectNames) -> None:
    """The Locust container gets every key of the referenced objects, then the run's own Secret:
    for a name in both, the later entry wins, as ``--env`` wins locally."""
    sources = [{_ENV_FROM_KEYS[ref.kind]: {"name": ref.name}} for ref in env.refs]
    if env.values:
        sources.append({"secretRef": {"name": names.secret}})
    pod = job["spec"]["template"]["spec"]
    locust = next(c for c in pod["containers"] if c["name"] == "locust")
    locust["envFrom"] = sources


def _service(names: RunObjectNames) -> dict[str, Any]:
    service = _load_one("service.yaml", "Service")
    service["metadata"]["name"] = names.service
    return service


def _network_policy(names: RunObjectNames, ui_sources: Sequence[str]) -> dict[str, Any]:
    """``k8s-jobs/networkpolicy.yaml`` with the web port opened to ``ui_sources`` (CIDRs); none
    known leaves the web port open to any source, as without the policy (said at run time)."""
    policy = _load_one("networkpolicy.yaml", "NetworkPolicy")
    policy["metadata"]["name"] = names.service
    web = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == WEB_PORT)
    if ui_sources:
        web["from"] = [{"ipBlock": {"cidr": cidr}} for cidr in ui_sources]
    return policy


def _master_job(
    config: RunConfig, plan: LoadPlan, names: RunObjectNames, locustfile_key: str
) -> dict[str, Any]:
    job = _load_one("master-job.yaml", "Job")
    _patch_job(job, config, names.master_job, plan.deadline_s, master_resources(config))
    flags = locust_flags(plan, "master", master_host=names.service)
    _patch_locust(job, names, locustfile_key, flags, "master-job.yaml")
    return job


def _worker_job(
    config: RunConfig, plan: LoadPlan, names: RunObjectNames, locustfile_key: str
) -> dict[str, Any]:
    job = _load_one("worker-job.yaml", "Job")
    job["spec"]["parallelism"] = plan.workers
    job["spec"]["completions"] = plan.workers
    if plan.rebalance:
        # --workers auto raises the parallelism while the run goes on; completions cannot change
        # after creation, so the Job has none: it is done when its pods are (work-queue Job).
        del job["spec"]["completions"]
    flags = locust_flags(plan, "worker", master_host=names.service)
    _patch_job(job, config, names.worker_job, plan.deadline_s, worker_resources(config))
    _patch_locust(job, names, locustfile_key, flags, "worker-job.yaml")
    return job


def _patch_job(
    job: dict[str, Any],
    config: RunConfig,
    name: str,
    deadline_s: int,
    resources: Mapping[str, Mapping[str, str]],
) -> None:
    job["metadata"]["name"] = name
    job["spec"]["activeDeadlineSeconds"] = deadline_s
    job["spec"]["ttlSecondsAfterFinished"] = math.ceil(config.ttl_s)
    pod = job["spec"]["template"]["spec"]
    if not config.requirements:
        pod.pop("initContainers", None)
    for container in _containers(pod):
        container["image"] = config.image
        container["resources"] = copy.deepcopy(dict(resources))
    if config.node_selector:
        pod["nodeSelector"] = dict(config.node_selector)
    if config.tolerations:
        pod["tolerations"] = [_toleration(t.key, t.value, t.effect) for t in config.tolerations]
    if config.affinity:
        pod["affinity"] = copy.deepcopy(dict(config.affinity))


def _patch_locust(
    job: dict[str, Any],
    names: RunObjectNames,
    locustfile_key: str,
    flags: Mapping[str, str | None],
    source: str,
) -> None:
    pod = job["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        if volume["name"] == _FILES_VOLUME:
            volume["configMap"]["name"] = names.configmap
    locust = next(c for c in pod["containers"] if c["name"] == "locust")
    mount = next(m for m in locust["volumeMounts"] if m["name"] == _FILES_VOLUME)
    all_flags = {"-f": f"{mount['mountPath']}/{locustfile_key}", **flags}
    locust["args"] = _set_flag_values(locust["args"], all_flags, source)


def _set_flag_values(
    args: Sequence[str], values: Mapping[str, str | None], source: str
) -> list[str]:
    """The value after each flag replaced; a switch (None) kept or added.

    Flags with a value must be in the YAML (it is the source of the command line); switches the
    YAML lacks, such as ``--enable-rebalancing``, are appended.
    """
    patched = list(args)
    for flag, value in values.items():
        if value is None:
            if flag not in patched:
                patched.append(flag)
            continue
        if flag not in patched[:-1]:
            raise ValueError(f"k8s-jobs/{source}: the locust args lack {flag} VALUE")
        patched[patched.index(flag) + 1] = value
    return patched


def _relabel(obj: dict[str, Any], run_id: str) -> None:
    """Point the run-specific labels (and the Service's selector) at this run."""
    label_maps = [obj["metadata"].get("labels", {})]
    spec = obj.get("spec", {})
    if obj["kind"] == "Job":
        label_maps.append(spec["template"]["metadata"]["labels"])
    if obj["kind"] == "Service":
        label_maps.append(spec["selector"])
    if obj["kind"] == "NetworkPolicy":
        label_maps.append(spec["podSelector"]["matchLabels"])
        for rule in spec["ingress"]:
            sources = rule.get("from", [])
            label_maps.extend(
                p["podSelector"]["matchLabels"] for p in sources if "podSelector" in p
            )
    for labels in label_maps:
        for key in (RUN_LABEL, INSTANCE_LABEL):
            if key in labels:
                labels[key] = run_id


def _set_namespace(obj: dict[str, Any], namespace: str) -> None:
    """Namespace right after the name, where ``kubectl get -o yaml`` shows it."""
    meta = obj["metadata"]
    obj["metadata"] = {"name": meta["name"], "namespace": namespace, **meta}
    obj["metadata"]["namespace"] = namespace


def _containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _resources(cpu: str, memory: str) -> dict[str, dict[str, str]]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}


def _toleration(key: str, value: str | None, effect: str | None) -> dict[str, str]:
    toleration = {"key": key, "operator": "Exists" if value is None else "Equal"}
    if value is not None:
        toleration["value"] = value
    if effect is not None:
        toleration["effect"] = effect
    return toleration


def _check_run_id(run_id: str) -> None:
    if not _LABEL_VALUE.match(run_id):
        raise UsageError(
            f"run id {run_id!r} cannot be a label value: at most 63 letters, digits and -_., "
            "starting and ending with a letter or digit"
        )


# --- loading ---------------------------------------------------------------------------------


@functools.cache
def _read_text(relative: str) -> str:
    return (shipped_dir("k8s-jobs") / relative).read_text(encoding="utf-8")


def _load(relative: str) -> list[dict[str, Any]]:
    """Fresh copies of the objects in one shipped YAML file (callers may change them)."""
    return [doc for doc in yaml.safe_load_all(_read_text(relative)) if doc]


def _load_one(relative: str, kind: str) -> dict[str, Any]:
    objects = _load(relative)
    if len(objects) != 1 or objects[0].get("kind") != kind:
        raise ValueError(f"k8s-jobs/{relative} must hold exactly one {kind}")
    return objects[0]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (locustfiles, scripts) as ``|`` blocks, readable in ``render``."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
