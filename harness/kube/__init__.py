"""The in-cluster backend: Kubernetes adapter, preflight, run lifecycle, sampler and UI proxy.

    client      the only module importing ``kubernetes``: connection, typed results, error mapping,
                retries, service proxy, SelfSubjectAccessReview
    rows        pure functions from API objects (plain dicts) to the rows of ``samples/*.csv``
    sampler     the per-tick sampler of HPAs, workloads, pods, PodMetrics and events
    preflight   what must hold before anything is created
    lifecycle   ``kubeswarm run`` in the cluster: create, wait, monitor, fetch, clean up, report
    runs        ``kubeswarm list`` / ``clean`` / ``sample``
    uiproxy     ``kubeswarm ui``: a local reverse proxy to the master's web port

Importing this package does not import the Kubernetes client; its modules do.
"""
