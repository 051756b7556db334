"""The objects of a detached run and of a scheduled one, as data (``k8s-jobs/controller-job.yaml``
loaded and patched; nothing is sent anywhere here).

A detached run is rooted in its status ConfigMap (``ks-<run>-status``): created first, it owns
the ServiceAccount, the RoleBinding to the shipped Role, the ConfigMap of the locustfile and
extra files, the results Service and the controller Job, so ``kubeswarm clean RUN`` deleting it
takes everything. The controller's own pod owns the Locust master Job (and through it the rest
of the load), so the load goes when the controller pod goes. None of these objects carries
``kubeswarm.io/run``: the controller deletes its Locust objects by that label at the end, and
must not delete itself.

The controller's command line is the user's ``kubeswarm run`` flags as typed, with the files
they name replaced by their path in the files ConfigMap's mount.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from harness.config.options import OPTIONS
from harness.errors import UsageError
from harness.kube.manifests import object_names
from harness.resources import shipped_dir

Body = dict[str, Any]

DETACHED_LABEL: Final = "kubeswarm.io/detached-run"
SCHEDULE_LABEL: Final = "kubeswarm.io/schedule"  # a scheduled run's name on its CronJob's runs
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
RESULTS_PORT: Final = 8080
FILES_MOUNT: Final = "/mnt/kubeswarm"
RESULTS_MOUNT: Final = "/results"
NEW_RUN: Final = "new"  # --controller-run new: a scheduled run picks its own run id
# Past the run's own deadline, how long the controller may take to analyse and write the report.
ANALYSIS_MARGIN_S: Final = 600
# Options that never reach the controller: where the launcher's kubeconfig and output are, and
# what only the launcher does. The files named by FILE_OPTIONS travel in a ConfigMap.
_LAUNCHER_ONLY: Final = frozenset(
    {"kubeconfig", "context", "out_dir", "local", "open_browser", "detach", "controller_run"}
)
FILE_OPTIONS: Final = ("locustfile", "extra_files")
# --env values would stand in the pod's command line: refused with --detach (--env-from works).
REFUSED_WITH_DETACH: Final = ("env", "env_files", "junit", "affinity", "chaos_dry_run")


@dataclass(frozen=True)
class DetachedNames:
    """Names of a detached run's own objects, beside its Locust objects (``object_names``)."""

    status: str
    files: str
    account: str  # ServiceAccount and RoleBinding
    job: str
    service: str  # the results server


def detached_names(run_id: str) -> DetachedNames:
    # object_names keeps "<base>-master" within 63 characters: suffixes up to 7 fit as well.
    base = object_names(run_id).master_job.removesuffix("-master")
    return DetachedNames(
        status=f"{base}-status",
        files=f"{base}-cfiles",
        account=f"{base}-ctl",
        job=f"{base}-ctl",
        service=f"{base}-res",
    )


def controller_args(
    raw: Mapping[str, Any], run_id: str, namespace: str, options: Sequence[str]
) -> list[str]:
    """``kubeswarm run`` arguments of the controller: the launcher's flags as typed (``raw``: the
    parsed command line's strings, None when not given), files mapped into the files mount."""
    refused = [OPTIONS[n].flags[-1] for n in REFUSED_WITH_DETACH if raw.get(n) not in (None, [])]
    if refused:
        raise UsageError(
            f"--detach does not take {', '.join(refused)}: the controller gets its flags on its "
            "command line (put secrets in a Secret and pass --env-from secret/NAME)"
        )
    args = ["run", "--controller-run", run_id, "-n", namespace, "--out", RESULTS_MOUNT]
    for name in options:
        value = raw.get(name)
        if name in _LAUNCHER_ONLY or name == "namespace" or value in (None, [], False):
            continue
        option = OPTIONS[name]
        flag = option.flags[-1]
        if option.switch:
            args.append(flag)
            continue
        values = value if option.multiple else [value]
        for item in values:
            text = str(item)
            if name in FILE_OPTIONS:
                text = f"{FILES_MOUNT}/{Path(text).name}"
            args += [flag, text]
    return args


def files_configmap(paths: Sequence[Path], name: str, run_label: Mapping[str, str]) -> Body:
    """The locustfile and the extra files, keyed by file name (the mount's file names)."""
    data: dict[str, str] = {}
    for path in paths:
        try:
            data[path.name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--detach ships {path} in a ConfigMap and cannot read it: {e}") from e
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": dict(run_label)},
        "data": data,
    }


def controller_job(
    *,
    name: str,
    files: str,
    account: str,
    image: str,
    args: Sequence[str],
    labels: Mapping[str, str],
    results_pvc: str | None,
    deadline_s: float,
) -> Body:
    """``k8s-jobs/controller-job.yaml`` for one controller."""
    job = _template()
    job["metadata"]["name"] = name
    job["metadata"]["labels"].update(labels)
    job["spec"]["activeDeadlineSeconds"] = math.ceil(deadline_s)
    pod_template = job["spec"]["template"]
    pod_template["metadata"]["labels"].update(labels)
    pod = pod_template["spec"]
    pod["serviceAccountName"] = account
    container = pod["containers"][0]
    container["image"] = image
    container["args"] = list(args)
    for volume in pod["volumes"]:
        if volume["name"] == "files":
            volume["configMap"]["name"] = files
        if volume["name"] == "results" and results_pvc:
            volume.pop("emptyDir", None)
            volume["persistentVolumeClaim"] = {"claimName": results_pvc}
    return job


def detached_objects(
    *,
    run_id: str,
    run_name: str,
    namespace: str,
    image: str,
    args: Sequence[str],
    files: Sequence[Path],
    results_pvc: str | None,
    run_deadline_s: float,
    keep_results_s: float,
    results_from: Sequence[str] | None = (),
) -> list[Body]:
    """Status ConfigMap (the root), ServiceAccount, RoleBinding, files ConfigMap, results Service,
    the results port's NetworkPolicy (unless ``results_from`` is None) and controller Job of one
    detached run, in creation order (the root first, see the module docstring; ``owned_by`` then
    links the rest to it)."""
    names = detached_names(run_id)
    labels = {DETACHED_LABEL: run_id, "app.kubernetes.io/managed-by": "kubeswarm"}
    status = status_configmap(names.status, run_id, run_name, state="pending")
    status["data"]["launched"] = "true"  # its controller Job is labelled: list judges it
    account = _service_account(names.account, labels)
    binding = _role_binding(names.account, names.account, namespace, labels)
    configmap = files_configmap(files, names.files, labels)
    service = _results_service(names.service, run_id, labels)
    job = controller_job(
        name=names.job,
        files=names.files,
        account=names.account,
        image=image,
        args=args,
        labels=labels,
        results_pvc=results_pvc,
        deadline_s=run_deadline_s + keep_results_s + ANALYSIS_MARGIN_S,
    )
    objects = [status, account, binding, configmap, service, job]
    if results_from is not None:
        objects.insert(5, _results_policy(names.service, run_id, labels, results_from))
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
    return objects


def status_configmap(name: str, run_id: str, run_name: str, *, state: str) -> Body:
    """A detached run's status: state, verdict and why, updated by its controller."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {
                DETACHED_LABEL: run_id,
                COMPONENT_LABEL: "status",
                "app.kubernetes.io/managed-by": "kubeswarm",
                SCHEDULE_LABEL: run_name,
            },
        },
        "data": {"run": run_id, "name": run_name, "state": state},
    }


def owned_by(obj: Body, owner: Mapping[str, Any]) -> Body:
    """A copy of ``obj`` owned by ``owner`` as the API server returned it (with its uid)."""
    meta = owner.get("metadata") or {}
    if not meta.get("uid"):
        raise ValueError("owned_by needs the owner as created (metadata.uid)")
    owned = copy.deepcopy(obj)
    owned["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner.get("apiVersion", "v1"),
            "kind": owner["kind"],
            "name": meta["name"],
            "uid": meta["uid"],
        }
    ]
    return owned


def cronjob_objects(
    *,
    run_name: str,
    namespace: str,
    schedule: str,
    image: str,
    args: Sequence[str],
    files: Sequence[Path],
    results_pvc: str | None,
    run_deadline_s: float,
    rbac: bool,
) -> list[Body]:
    """The CronJob of a scheduled run (and its files ConfigMap; with ``rbac`` its ServiceAccount
    and RoleBinding first). Each firing is a controller run with a run id of its own, compared
    with the previous completed run of the same name on the results volume (``--baseline
    previous``); it exits with the verdict's code (``--keep-results 0``), so a FAIL or a
    regression fails the Job. Byte-stable: nothing in it depends on when it is printed."""
    if not schedule or len(schedule.split()) not in (5, 6):
        raise UsageError("--cronjob needs --schedule CRON: five fields, such as '0 3 * * *'")
    if not results_pvc:
        raise UsageError(
            "--cronjob needs --results-pvc NAME: each run compares with the previous one, "
            "which must outlive its controller"
        )
    base = f"ks-cron-{run_name}"
    labels = {SCHEDULE_LABEL: run_name, "app.kubernetes.io/managed-by": "kubeswarm"}
    account = base if rbac else "kubeswarm"
    job = controller_job(
        name=base,
        files=f"{base}-files",
        account=account,
        image=image,
        args=[*args, "--baseline", "previous", "--keep-results", "0s"],
        labels=labels,
        results_pvc=results_pvc,
        deadline_s=run_deadline_s + ANALYSIS_MARGIN_S,
    )
    job["spec"].pop("ttlSecondsAfterFinished", None)  # the CronJob's history limits keep them
    job["metadata"]["labels"].pop(DETACHED_LABEL, None)
    job["spec"]["template"]["metadata"]["labels"].pop(DETACHED_LABEL, None)
    cronjob: Body = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": base, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "schedule": schedule,
            # A run still going when the next is due: the next is skipped, never overlapped
            # (two loads at once would measure each other).
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": dict(labels)}, "spec": job["spec"]},
        },
    }
    configmap = files_configmap(files, f"{base}-files", labels)
    configmap["metadata"]["namespace"] = namespace
    objects = [configmap, cronjob]
    if rbac:
        binding = _role_binding(base, base, namespace, labels)
        account_obj = _service_account(base, labels)
        account_obj["metadata"]["namespace"] = namespace
        binding["metadata"]["namespace"] = namespace
        objects = [account_obj, binding, *objects]
    return objects


def _service_account(name: str, labels: Mapping[str, str]) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "labels": dict(labels)},
    }


def _role_binding(name: str, account: str, namespace: str, labels: Mapping[str, str]) -> Body:
    """Binds the shipped Role ``kubeswarm`` (``kubeswarm render --rbac``) to the controller."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "labels": dict(labels)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kubeswarm"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def _results_service(name: str, run_id: str, labels: Mapping[str, str]) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "selector": {DETACHED_LABEL: run_id, COMPONENT_LABEL: "controller"},
            "ports": [{"name": "results", "port": RESULTS_PORT, "targetPort": "results"}],
        },
    }


def _results_policy(
    name: str, run_id: str, labels: Mapping[str, str], sources: Sequence[str]
) -> Body:
    """Only where the API server's service proxy connects from (the nodes' addresses, or
    ``--ui-from``) may reach the results port, as for the master's web port
    (``k8s-jobs/networkpolicy.yaml``); none known leaves it open to every pod. The controller's
    other traffic is its own (egress is not restricted)."""
    rule: Body = {"ports": [{"port": RESULTS_PORT, "protocol": "TCP"}]}
    if sources:
        rule["from"] = [{"ipBlock": {"cidr": cidr}} for cidr in sources]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "podSelector": {"matchLabels": {DETACHED_LABEL: run_id, COMPONENT_LABEL: "controller"}},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        },
    }


@functools.cache
def _template_text() -> str:
    return (shipped_dir("k8s-jobs") / "controller-job.yaml").read_text(encoding="utf-8")


def _template() -> Body:
    loaded = yaml.safe_load(_template_text())
    if not isinstance(loaded, dict) or loaded.get("kind") != "Job":
        raise ValueError("k8s-jobs/controller-job.yaml must hold exactly one Job")
    return loaded
