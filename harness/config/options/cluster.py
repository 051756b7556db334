"""Options of the cluster: connection, the load's pods and their objects."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from harness.config.options.base import STARTUP_MARGIN_S, WORKER_MEMORY_MI_PER_PROCESS, Option
from harness.config.values import (
    affinity_file,
    any_text,
    boolean,
    node_selector,
    non_negative_duration,
    parse_cidr,
    positive_duration,
    quantity,
    run_name,
    toleration,
)

CLUSTER_OPTIONS: Final = (
    Option(
        "local",
        ("--local",),
        boolean,
        False,
        "run master and workers as local processes instead of in the cluster",
        switch=True,
    ),
    Option(
        "kubeconfig",
        ("--kubeconfig",),
        Path,
        None,
        "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)",
        metavar="FILE",
    ),
    Option("context", ("--context",), any_text, None, "kubeconfig context to use"),
    Option(
        "namespace",
        ("-n", "--namespace"),
        run_name,
        None,
        "namespace for the load Jobs and default namespace of watch targets",
    ),
    Option(
        "image",
        ("--image",),
        any_text,
        "locustio/locust:2.47.0",
        "container image of master and workers (must contain locust)",
    ),
    Option(
        "keep",
        ("--keep",),
        boolean,
        False,
        "leave the Jobs in the cluster after the run",
        switch=True,
    ),
    Option(
        "extra_files",
        ("--extra-file",),
        Path,
        (),
        "file shipped next to the locustfile (repeatable)",
        multiple=True,
        metavar="FILE",
    ),
    Option(
        "requirements",
        ("--requirement",),
        any_text,
        (),
        "pip requirement installed in the pods before Locust starts (repeatable)",
        multiple=True,
        metavar="REQ",
    ),
    # The master's NetworkPolicy is on by default (k8s-jobs/networkpolicy.yaml says why).
    Option(
        "no_network_policy",
        ("--no-network-policy",),
        boolean,
        False,
        "create no NetworkPolicy for the master (its web port and zmq port open to any pod)",
        switch=True,
    ),
    Option(
        "ui_from",
        ("--ui-from",),
        parse_cidr,
        (),
        "CIDR the API server's service proxy connects from, allowed to the master's web port "
        "(default: the nodes' addresses; repeatable)",
        multiple=True,
        metavar="CIDR",
    ),
    # None: pip's own default index; pods often cannot reach it, a mirror they can is given.
    Option(
        "pip_index_url",
        ("--pip-index-url",),
        any_text,
        None,
        "package index the pods install --requirement from (a plain-http index is trusted "
        "for its host)",
        metavar="URL",
    ),
    # Scheduling of the load pods: empty by default, so they go wherever the cluster puts them.
    Option(
        "node_selector",
        ("--node-selector",),
        node_selector,
        (),
        "cluster: run the load pods only on nodes with this label, key=value (repeatable)",
        multiple=True,
        metavar="KEY=VALUE",
    ),
    Option(
        "tolerations",
        ("--toleration",),
        toleration,
        (),
        "cluster: let the load pods onto nodes with this taint, key=value:Effect or "
        "key:Effect (repeatable)",
        multiple=True,
        metavar="TAINT",
    ),
    Option(
        "affinity",
        ("--affinity",),
        affinity_file,
        None,
        "cluster: YAML file with the load pods' affinity (nodeAffinity, podAffinity, "
        "podAntiAffinity)",
        metavar="FILE",
    ),
    # Requests equal limits (Guaranteed QoS). A worker gets one core per Locust process: a
    # process is single-threaded, so one core is what it uses when pushed (measured 480m at
    # 940 req/s with the target, not Locust, the limit), and a throttled load generator
    # reports its own slowness as the target's latency.
    Option(
        "worker_cpu",
        ("--worker-cpu",),
        quantity,
        None,
        "cluster: CPU of each worker pod, Kubernetes quantity (default: --processes cores)",
        metavar="QUANTITY",
    ),
    Option(
        "worker_memory",
        ("--worker-memory",),
        quantity,
        None,
        f"cluster: memory of each worker pod, Kubernetes quantity (default: "
        f"{WORKER_MEMORY_MI_PER_PROCESS}Mi per process)",
        metavar="QUANTITY",
    ),
    # The master only aggregates stats and serves the UI: measured at most 20m CPU and 52 MiB
    # RSS with one worker at 940 req/s. 500m leaves room for many workers' reports and the
    # UI; 512 MiB for stats growing with request names x run time (Locust issue #2045).
    Option(
        "master_cpu",
        ("--master-cpu",),
        quantity,
        "500m",
        "cluster: CPU of the master pod, Kubernetes quantity",
        metavar="QUANTITY",
    ),
    Option(
        "master_memory",
        ("--master-memory",),
        quantity,
        "512Mi",
        "cluster: memory of the master pod, Kubernetes quantity",
        metavar="QUANTITY",
    ),
    Option(
        "deadline_s",
        ("--deadline",),
        positive_duration,
        None,
        "cluster: the Jobs' activeDeadlineSeconds, so nothing outlives a dead harness "
        f"(default: run time + autoquit + {STARTUP_MARGIN_S:g}s to start)",
        metavar="DURATION",
    ),
    # An hour to read a failed run's pods and logs, after which finished Jobs (and with them
    # every object of the run) are deleted even if kubeswarm never came back to clean up.
    Option(
        "ttl_s",
        ("--ttl",),
        non_negative_duration,
        3600.0,
        "cluster: seconds finished Jobs stay (ttlSecondsAfterFinished)",
        metavar="DURATION",
    ),
    Option(
        "rbac",
        ("--rbac",),
        boolean,
        False,
        "print the ServiceAccount, Role and RoleBinding kubeswarm needs in -n NAMESPACE",
        switch=True,
    ),
)
