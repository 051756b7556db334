"""One function per CLI command: validated values in, one library call, a few printed lines out.

Heavy modules are imported inside each function so ``kubeswarm --help`` stays fast and a local run
never loads the Kubernetes client.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from harness.cli.reporter import reporter_for
from harness.config.checks import check_writable_dir, check_writable_file
from harness.config.run import RunConfig, build_run_config
from harness.errors import (
    EXIT_CLUSTER,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SLO_FAILED,
    EXIT_TERMINATED,
    RunDirectoryError,
    UsageError,
)
from harness.session.run import Report, report_writer

if TYPE_CHECKING:
    from harness.modes import ModeName
    from harness.session.core import RunResult


def _verdict_exit(verdict: str) -> int:
    # An incomplete run (cut short, a watched HPA never sampled) cannot pass a CI gate.
    return EXIT_SLO_FAILED if verdict in ("fail", "incomplete") else EXIT_OK


def _summary(result: RunResult, out: TextIO) -> int:
    from analysis.report import format_summary

    out.write(format_summary(result.summary, result.run_dir))
    if result.status == "interrupted":
        return EXIT_TERMINATED if result.terminated else EXIT_INTERRUPTED
    if result.status == "failed":
        return EXIT_CLUSTER
    return _verdict_exit(result.verdict)


def _report_writer(values: Mapping[str, Any]) -> Report:
    """Checks ``--baseline`` and ``--tolerance`` before anything starts; the report writer."""
    from analysis.compare import parse_tolerance
    from analysis.compare.runs import check_run_dir

    baseline = values.get("baseline")
    try:
        tolerances = dict(parse_tolerance(t) for t in values.get("tolerances") or ())
        if baseline is not None:
            check_run_dir(Path(baseline))
    except ValueError as e:
        raise UsageError(str(e)) from e
    if values.get("junit") is not None:
        check_writable_file(Path(values["junit"]), "--junit")
    return report_writer(
        baseline=None if baseline is None else Path(baseline),
        tolerances=tolerances or None,
        junit=values.get("junit"),
        target_rps=values.get("target_rps"),
    )


def demo(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    return _launch("demo", values, out)


def run(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    if values.get("detach") or values.get("controller_run"):
        return _unattended(build_run_config(values), values, args, out)
    if values.get("chaos_dry_run"):
        from harness.backends.chaos_preview import preview_chaos

        lines = preview_chaos(build_run_config(values))
        out.write("".join(f"chaos dry run: {line}\n" for line in lines))
        return EXIT_OK
    return _launch("local" if values.get("local") else "cluster", values, out)


def sample(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    return _launch("sample", values, out)


def _launch(name: ModeName, values: Mapping[str, Any], out: TextIO) -> int:
    """Every run, whatever its mode: the values checked into the mode's config, the report
    writer's options checked, the run directory checked, then the run and its summary."""
    from harness.modes import launch, mode_named

    mode = mode_named(name)
    config = mode.configure(values)
    report = _report_writer(values)
    check_writable_dir(Path(values["out_dir"]), "--out")
    return _summary(launch(mode, config, reporter_for(out), report=report), out)


def _unattended(
    config: RunConfig, values: Mapping[str, Any], args: argparse.Namespace, out: TextIO
) -> int:
    """``run --detach`` (the launcher) or ``run --controller-run`` (the controller in a pod)."""
    import os

    from harness.cli import COMMANDS

    if config.local:
        raise UsageError("--detach runs in the cluster; it cannot be combined with --local")
    baseline = values.get("baseline")
    if values.get("controller_run"):
        from harness.unattended.controller import run_controller

        return run_controller(
            config,
            values["controller_run"],
            reporter_for(out),
            lambda result: _summary(result, out),
            keep_results_s=values["keep_results_s"],
            baseline=None if baseline is None else Path(baseline),
            tolerances=dict(_tolerances(values)) or None,
            target_rps=values.get("target_rps"),
            environ=os.environ,
        )
    from harness.kube.client import connect
    from harness.unattended.launcher import DetachSettings, check_detach, detach

    settings = DetachSettings(
        results_pvc=values.get("results_pvc"),
        keep_results_s=values["keep_results_s"],
        baseline=None if baseline is None else Path(baseline),
    )
    options = next(c for c in COMMANDS if c.name == "run").options
    raw = {name: args.raw_texts.get(name) for name in options}
    check_detach(settings, raw, options)
    kube = connect(config.kubeconfig, config.context, config.namespace)
    try:
        launched = detach(
            kube, config, settings, raw, options, note=lambda line: print(line, file=out)
        )
    finally:
        kube.close()
    ns = launched.namespace
    out.write(
        f"\nrun {launched.run_id}: {launched.state} (controller up after "
        f"{launched.waited_s:.0f}s); nothing more runs here\n"
        f"  follow:  kubeswarm attach {launched.run_id} -n {ns}\n"
        f"  state:   kubeswarm list -n {ns}\n"
        f"  web UI:  kubeswarm ui {launched.run_id} -n {ns}\n"
        f"  results: kubeswarm fetch {launched.run_id} -n {ns} --out runs\n"
    )
    return EXIT_OK


def fetch(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    from harness.kube.runs import cluster_session
    from harness.unattended.launcher import fetch as fetch_run

    out_dir = Path(values["out_dir"])
    check_writable_dir(out_dir, "--out")
    with cluster_session(values) as (kube, namespace):
        run_dir = fetch_run(kube, namespace, args.run, out_dir)
    out.write(f"fetched {run_dir}\n")
    return EXIT_OK


def attach(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    from harness.kube.runs import cluster_session
    from harness.unattended.launcher import attach as follow

    with cluster_session(values) as (kube, namespace):
        state = follow(kube, namespace, args.run, out)
    return EXIT_OK if state == "done" else EXIT_CLUSTER


def report(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    from analysis.render.junit import write_junit
    from analysis.render.markdown import render_markdown
    from analysis.report import format_summary, write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "run.json").is_file() and not (run_dir / "samples").is_dir():
        raise UsageError(f"{run_dir} is not a kubeswarm run directory (no run.json, no samples/)")
    if values["report_format"] not in ("text", "md"):
        raise UsageError(f"--format {values['report_format']}: choose text or md")
    _report_writer(values)  # --baseline, --tolerance and --junit checked before any work
    _check_report_dir(run_dir)
    tolerances = dict(_tolerances(values))
    # The SLOs the run was judged by stay its SLOs; more can be given on the command line.
    slos = list(dict.fromkeys([*_recorded_slos(run_dir), *values["slos"]]))
    baseline = values.get("baseline")
    try:
        summary = write_report(
            run_dir,
            slos=slos,
            whatifs=values["whatif"],
            baseline=None if baseline is None else Path(baseline),
            tolerances=tolerances or None,
            target_rps=values.get("target_rps"),
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    except OSError as e:  # the directory changed under us after the check
        raise RunDirectoryError(f"cannot write the report into {run_dir}: {e.strerror}") from e
    if values.get("junit") is not None:
        write_junit(Path(values["junit"]), summary)
    if values["report_format"] == "md":
        out.write(render_markdown(summary))
    else:
        out.write(format_summary(summary, run_dir))
    return _verdict_exit(str(summary["verdict"]))


def _check_report_dir(run_dir: Path) -> None:
    """``report`` writes into the run directory's report/: refused up front when it cannot."""
    try:
        check_writable_dir(run_dir / "report", "report:")
    except UsageError as e:
        raise UsageError(
            f"{e}; kubeswarm report writes into the run directory, so copy it somewhere "
            "writable first"
        ) from None


def _tolerances(values: Mapping[str, Any]) -> list[tuple[str, float]]:
    from analysis.compare import parse_tolerance

    try:
        return [parse_tolerance(t) for t in values.get("tolerances") or ()]
    except ValueError as e:
        raise UsageError(str(e)) from e


def compare(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    from analysis.compare import compare as compare_runs
    from analysis.compare import format_comparison, load_summary, write_comparison
    from analysis.render.junit import write_junit

    base, candidate = Path(args.baseline_dir), Path(args.candidate_dir)
    if base.resolve() == candidate.resolve():
        raise UsageError(
            f"compare: {base} is both the baseline and the candidate; give two different runs"
        )
    tolerances = dict(_tolerances(values)) or None
    if values.get("compare_out") is not None:
        check_writable_dir(Path(values["compare_out"]), "--out")
    if values.get("junit") is not None:
        check_writable_file(Path(values["junit"]), "--junit")
    try:
        comparison = compare_runs(base, candidate, tolerances)
    except ValueError as e:
        raise UsageError(str(e)) from e
    out.write(format_comparison(comparison))
    if values.get("compare_out") is not None:
        paths = write_comparison(comparison, Path(values["compare_out"]))
        out.write(f"compare: {paths['html']}\n")
    if values.get("junit") is not None:
        summary, _ = load_summary(candidate)
        write_junit(Path(values["junit"]), summary, comparison.to_dict())
    return EXIT_SLO_FAILED if comparison.regressions else EXIT_OK


def render(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    import time

    from harness.kube.manifests import rbac_objects, redacted, run_objects, to_yaml
    from harness.session.store import new_run_id

    namespace = values.get("namespace") or "default"
    if values.get("cronjob"):
        return _render_cronjob(values, args, namespace, out)
    if values.get("rbac"):
        chaos = bool(values.get("rbac_chaos"))
        out.write(to_yaml(rbac_objects(namespace, chaos=chaos, env_refs=values["env_from"])))
        return EXIT_OK
    config = build_run_config(values)
    run_id = new_run_id(config.name, time.time())
    out.write(to_yaml(redacted(run_objects(config, run_id, namespace))))
    return EXIT_OK


def _render_cronjob(
    values: Mapping[str, Any], args: argparse.Namespace, namespace: str, out: TextIO
) -> int:
    from harness.cli import COMMANDS
    from harness.kube.manifests import to_yaml
    from harness.session.plan import plan_for
    from harness.unattended.objects import NEW_RUN, controller_args, cronjob_objects

    config = build_run_config(values)
    options = next(c for c in COMMANDS if c.name == "run").options
    raw = {name: args.raw_texts.get(name) for name in options}
    objects = cronjob_objects(
        run_name=config.name,
        namespace=namespace,
        schedule=values.get("schedule") or "",
        image=config.image,
        args=controller_args(raw, NEW_RUN, namespace, options),
        files=[config.load.locustfile, *config.extra_files],
        results_pvc=values.get("results_pvc"),
        run_deadline_s=plan_for(config).deadline_s,
        rbac=bool(values.get("rbac")),
    )
    out.write(to_yaml(objects))
    return EXIT_OK


def ui(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    from harness.kube.runs import cluster_session
    from harness.kube.uiproxy import serve_ui

    with cluster_session(values) as (kube, namespace):
        serve_ui(
            kube,
            namespace,
            args.run,
            port=values["port"],
            open_browser=values["open_browser"],
            out=out,
        )
    return EXIT_OK


def list_runs(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    import time

    from harness.kube.runs import cluster_session, format_runs
    from harness.kube.runs import list_runs as find_runs
    from harness.unattended.status import format_detached, list_detached

    with cluster_session(values) as (kube, namespace):
        out.write(format_runs(find_runs(kube, namespace), time.time()))
        out.write(format_detached(list_detached(kube, namespace), time.time()))
    return EXIT_OK


def clean(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    from harness.errors import UsageError as NothingToClean
    from harness.kube.runs import clean as delete_runs
    from harness.kube.runs import cluster_session
    from harness.unattended.launcher import clean_detached

    with cluster_session(values) as (kube, namespace):
        detached = clean_detached(kube, namespace, None if values["all_runs"] else args.run)
        try:
            deleted = detached + delete_runs(kube, namespace, args.run, values["all_runs"])
        except NothingToClean:
            if not detached:
                raise
            deleted = detached
    out.write("".join(f"deleted {name}\n" for name in deleted) or "nothing to delete\n")
    return EXIT_OK


def _recorded_slos(run_dir: Path) -> list[str]:
    """The SLOs run.json recorded (none for a run directory without run.json)."""
    from analysis.data.runjson import RunRecordError, read_run_record

    if not (run_dir / "run.json").exists():
        return []
    try:
        record = read_run_record(run_dir)
    except RunRecordError as e:
        raise UsageError(str(e)) from None
    slos = record.slos or (record.config or {}).get("slos") or []
    return [str(s) for s in slos]
