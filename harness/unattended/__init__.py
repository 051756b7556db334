"""Unattended runs: a run whose controller is kubeswarm itself, as a Job in the cluster.

``objects`` (pure): the controller Job, its RBAC, files, results Service and status, and the
CronJob of a scheduled run. ``controller``: what runs in that Job (``kubeswarm run
--controller-run``). ``status``: the run's state in a ConfigMap. ``results``: the run directory
served read-only and fetched byte for byte. ``launcher``: ``run --detach``, ``fetch``, ``attach``.
"""
