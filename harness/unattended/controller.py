"""The controller of a detached or scheduled run: ``kubeswarm run`` inside the cluster.

It is the ordinary cluster run (``ClusterMode``: preflight, Jobs, sampling, timed actions,
fetching Locust's files, the report), with four additions: the run id is the one the launcher
chose; the Locust master Job is owned by the controller's own pod (``KUBESWARM_POD_NAME`` and
``KUBESWARM_POD_UID`` from the downward API), so deleting the pod takes the load with it; each
state change is written to the run's status ConfigMap; and the run directory is served read-only
(``results.ResultsServer``) from the start until ``--keep-results`` after the end. With
``--baseline previous`` the run is compared with the newest completed run of the same name, read
from the results volume when it is there (a PVC), else fetched from its still-serving controller.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from harness.config.run import RunConfig
from harness.errors import EXIT_USAGE, KubeswarmError
from harness.kube.client import KubeClient, connect
from harness.modes import launch
from harness.modes.cluster import ClusterMode
from harness.session.core import Observation, Reporter, RunResult, TickContext
from harness.session.run import report_writer
from harness.session.store import new_run_id
from harness.unattended.objects import NEW_RUN, RESULTS_PORT, detached_names
from harness.unattended.results import ResultsServer, fetch_run
from harness.unattended.status import StatusBoard, list_detached

PREVIOUS: Final = "previous"  # --baseline previous


class _RunningMark:
    """Ticked with the session's actions: records ``running`` once the load has started."""

    def __init__(self, board: StatusBoard) -> None:
        self.board, self.started, self.announced = board, False, False

    def tick(self, ctx: TickContext) -> Observation:
        if not self.announced:
            self.announced = True
            self.board.set("starting")
        if ctx.test_start is not None and not self.started:
            self.started = True
            self.board.set("running")
        return Observation()


def own_pod(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The ownerReference to this pod, from the downward API; None outside a pod."""
    name, uid = environ.get("KUBESWARM_POD_NAME"), environ.get("KUBESWARM_POD_UID")
    if not name or not uid:
        return None
    return {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}


def run_controller(
    config: RunConfig,
    run_arg: str,
    reporter: Reporter,
    summarize: Callable[[RunResult], int],
    *,
    keep_results_s: float,
    baseline: Path | None,
    tolerances: Mapping[str, float] | None,
    target_rps: float | None,
    environ: Mapping[str, str],
    sleep: Callable[[float], None] = time.sleep,
    kube: KubeClient | None = None,
) -> int:
    """Runs the run, records its states, serves its directory; returns the exit code (the
    verdict's, as ``kubeswarm run``'s). A failure is recorded with why, then re-raised."""
    kube = kube or connect(config.kubeconfig, config.context, config.namespace, warn=reporter.event)
    namespace = config.namespace or kube.namespace
    run_id = new_run_id(config.name, time.time()) if run_arg == NEW_RUN else run_arg
    board = StatusBoard(kube, namespace, run_id, warn=reporter.event)
    board.ensure(config.name)
    run_dir = config.out_dir / run_id
    server = ResultsServer(lambda: run_dir if run_dir.is_dir() else None, RESULTS_PORT).start()
    pod = own_pod(environ)
    board.set("pending", pod=None if pod is None else pod["name"], run_dir=run_id)
    reporter.info(f"controller of run {run_id} in namespace {namespace}")
    try:
        compare_with = (
            _previous_run(kube, namespace, config, run_id, reporter)
            if baseline == Path(PREVIOUS)
            else baseline
        )

        def report(directory: Path, slos: Sequence[str]) -> dict[str, Any]:
            board.set("analysing")
            writer = report_writer(
                baseline=compare_with, tolerances=tolerances, target_rps=target_rps
            )
            return writer(directory, slos)

        try:
            result = launch(
                ClusterMode(kube=kube, run_id=run_id, owner=pod),
                config,
                reporter,
                report=report,
                actions=[_RunningMark(board)],
            )
        except KubeswarmError as e:
            board.set(
                "failed",
                reason=" ".join(str(e).split())[:2000],
                exit_code=str(e.exit_code),
                serves_until=_until(keep_results_s, run_dir),
            )
            _serve(keep_results_s, run_dir, sleep)
            raise
        code = summarize(result)
        state, reason = "done", ""
        if result.status != "completed":
            state = "failed"
            reason = (
                "the controller was stopped (SIGTERM): the load was stopped and the results "
                "recorded until then were kept"
                if result.status == "interrupted"
                else f"the run ended {result.status}"
            )
        board.set(
            state,
            verdict=result.verdict,
            reason=reason or None,
            exit_code=str(code),
            serves_until=_until(keep_results_s, run_dir),
        )
        _serve(keep_results_s, run_dir, sleep)
        return code
    finally:
        server.close()
        kube.close()


def _until(keep_results_s: float, run_dir: Path) -> str | None:
    return f"{time.time() + keep_results_s:.0f}" if keep_results_s and run_dir.is_dir() else None


def _serve(keep_results_s: float, run_dir: Path, sleep: Callable[[float], None]) -> None:
    """Keeps the process (and so its results server) up for ``keep_results_s``."""
    if keep_results_s > 0 and run_dir.is_dir():
        sleep(keep_results_s)


def _previous_run(
    kube: KubeClient, namespace: str, config: RunConfig, run_id: str, reporter: Reporter
) -> Path | None:
    """The newest completed run of the same name, before this one: on the results volume, or
    fetched from its controller while that still serves it. None (said) when there is none."""
    done = [
        r
        for r in list_detached(kube, namespace)
        if r.name == config.name and r.state == "done" and r.run_id < run_id and r.run_dir
    ]
    if not done:
        reporter.event(f"--baseline previous: no completed run of {config.name} yet")
        return None
    previous = max(done, key=lambda r: r.run_id)
    local = config.out_dir / previous.run_dir
    if (local / "run.json").is_file():
        reporter.event(f"--baseline previous: {previous.run_id} (on the results volume)")
        return local
    service = detached_names(previous.run_id).service

    def get(path: str) -> bytes:
        return kube.proxy("GET", namespace, service, RESULTS_PORT, path)

    try:
        fetched = fetch_run(get, Path(tempfile.mkdtemp(prefix="kubeswarm-baseline-")))
    except KubeswarmError as e:
        if e.exit_code == EXIT_USAGE:
            raise
        reporter.event(f"--baseline previous: {previous.run_id} is no longer served ({e})")
        return None
    reporter.event(f"--baseline previous: {previous.run_id} (fetched from its controller)")
    return fetched
