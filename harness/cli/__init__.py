"""The ``kubeswarm`` command: parse flags into a frozen config, call one function, print, exit.

Every failure reaches ``main`` as a ``KubeswarmError`` and leaves through the single exit-code
mapping of ``harness.errors``: 0 ok, 1 an SLO failed, 2 bad input, 3 cluster or load-generator
error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TextIO

from harness import __version__
from harness.config.checks import check_command
from harness.config.options import OPTIONS, merge_sources, raw_texts
from harness.errors import EXIT_USAGE, KubeswarmError, UsageError, interrupted_exit

_ENV_OPTIONS = ("env", "env_files", "env_from")
_RUN_OPTIONS = (
    "locustfile",
    "host",
    "users",
    "spawn_rate",
    "run_time_s",
    "workers",
    "processes",
    "watch",
    "slos",
    "out_dir",
    "name",
    "sample_interval_s",
    "hpa_sync_period_s",
    "local",
    "kubeconfig",
    "context",
    "namespace",
    "image",
    "keep",
    "extra_files",
    "requirements",
    "pip_index_url",
    "no_network_policy",
    "ui_from",
    "autoquit_s",
    "open_browser",
    "node_selector",
    "tolerations",
    "affinity",
    "worker_cpu",
    "worker_memory",
    "master_cpu",
    "master_memory",
    "deadline_s",
    "ttl_s",
    "baseline",
    "tolerances",
    "junit",
    "target_rps",
    "max_workers",
    "chaos",
    "chaos_target",
    "chaos_pick",
    "chaos_dry_run",
    *_ENV_OPTIONS,
    *("detach", "results_pvc", "keep_results_s", "controller_run"),
)
_CHAOS_OPTIONS = ("chaos", "chaos_target", "chaos_pick", "chaos_dry_run")
_RESULT_OPTIONS = ("baseline", "tolerances", "junit", "target_rps")
_CLUSTER_OPTIONS = ("kubeconfig", "context", "namespace")


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    options: tuple[str, ...]
    positional: tuple[tuple[str, str, str], ...] = ()  # (name, nargs, help)
    # An option whose meaning narrows in this command says so in this command's help.
    help: Mapping[str, str] = field(default_factory=dict)


COMMANDS: tuple[Command, ...] = (
    Command(
        "demo",
        "everything on this machine, no cluster needed: starts a demo web service under "
        "gunicorn, a local autoscaler running the HPA algorithm on it, a step load from a local "
        "Locust master and workers, samples all of it and writes the report",
        (
            "duration_s",
            "out_dir",
            "demo_users",
            "workers",
            "sample_interval_s",
            "min_replicas",
            "max_replicas",
            "cpu_target_pct",
            "memory_target_pct",
            "cpu_request",
            "memory_request",
            "slos",
            "open_browser",
            *_RESULT_OPTIONS,
            "chaos",
            "chaos_pick",
            "locustfile",
            "env",
            "env_files",
        ),
        help={
            "sample_interval_s": "seconds between samples, at most 1s in the demo so its 5 s "
            "autoscaler sync is resolved (default: 1s)",
            "workers": "local Locust worker processes",
            "locustfile": "locustfile to run against the demo target (default: the shipped step "
            "load; locustfiles/ramp.py searches for its capacity)",
        },
    ),
    Command(
        "run",
        "run a locustfile as a distributed Locust test: master and worker Jobs in the cluster "
        "(or, with --local, processes on this machine), record what the watched HPAs and pods "
        "do, write the report and exit 1 if an --slo failed",
        _RUN_OPTIONS,
    ),
    Command(
        "ui",
        "serve the Locust web UI of a running in-cluster run on a local port, through the API "
        "server (no port-forward)",
        (*_CLUSTER_OPTIONS, "port", "open_browser"),
        (("run", "?", "run id or name (default: the newest running run)"),),
    ),
    Command(
        "report",
        "(re)build findings, charts and the report of a run directory, optionally with other "
        "--slo gates, --whatif replays and a --baseline; exit 1 if an --slo failed",
        ("slos", "whatif", *_RESULT_OPTIONS, "report_format"),
        (("run_dir", "1", "run directory to analyse"),),
    ),
    Command(
        "render",
        "print the objects `run` would create (same flags as run), or with --rbac the Role "
        "kubeswarm needs; creates nothing",
        (
            *(
                o
                for o in _RUN_OPTIONS
                if o
                not in (
                    *("local", "out_dir", "open_browser", "detach", "controller_run"),
                    *_RESULT_OPTIONS,
                    *_CHAOS_OPTIONS,
                )
            ),
            "rbac",
            "rbac_chaos",
            "cronjob",
            "schedule",
        ),
    ),
    Command(
        "compare",
        "compare a candidate run with a baseline: regressions beyond tolerance exit 1",
        ("tolerances", "compare_out", "junit"),
        (
            ("baseline_dir", "1", "the baseline run directory"),
            ("candidate_dir", "1", "the candidate run directory"),
        ),
    ),
    Command("list", "list the kubeswarm runs in a namespace of the cluster", _CLUSTER_OPTIONS),
    Command(
        "fetch",
        "download the run directory of a detached run (run --detach), byte for byte",
        (*_CLUSTER_OPTIONS, "out_dir"),
        (("run", "1", "run id of the detached run (kubeswarm list shows them)"),),
    ),
    Command(
        "attach",
        "follow a detached run: its controller's progress lines until it is done",
        _CLUSTER_OPTIONS,
        (("run", "1", "run id of the detached run"),),
    ),
    Command(
        "clean",
        "delete a run's objects (or every run's, with --all) from the cluster",
        (*_CLUSTER_OPTIONS, "all_runs"),
        (("run", "?", "run id to delete"),),
    ),
    Command(
        "sample",
        "record the watched HPAs, workloads and pods for -t while load generated elsewhere "
        "runs; no locustfile, starts no Locust, writes a run directory and its report",
        (
            "watch",
            "run_time_s",
            "sample_interval_s",
            "hpa_sync_period_s",
            "out_dir",
            "name",
            *_CLUSTER_OPTIONS,
        ),
        help={
            "watch": "what to record: hpa/NAME, deployment/NAME, statefulset/NAME or "
            "NAMESPACE/KIND/NAME (repeatable)",
            "run_time_s": "how long to record (90s, 5m, 1h30m)",
            "name": "run name used in the run id (default: sample)",
            "namespace": "namespace of watch targets written without one (default: the context's)",
        },
    ),
)


# argparse quotes what the user typed in some of its messages; any of it may be a value of
# --env (`--env-fi=TOKEN`, `--keep=TOKEN`, a token typed where the command goes). Each pattern
# keeps the message and drops the typed text.
_ECHOES: Final = (
    (re.compile(r"invalid choice: '.*?'( \(choose from|$)"), r"invalid choice\1"),
    (re.compile(r"ignored explicit argument '.*'$"), "takes no value"),
    (re.compile(r"invalid (\S+) value: '.*'$"), r"invalid \1 value"),
    (
        re.compile(r"ambiguous option: (-[^=\s]*)=.*? could match"),
        r"ambiguous option: \1 could match",
    ),
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2, and never repeats
    what was typed (it may be a value of --env)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A value that starts with a minus and a digit (-t -5s) is a value to refuse by its own
        # parser; argparse's default pattern takes only -5 and -5.0 as values, so -5s read as a
        # flag and the error said "expected one argument". No kubeswarm flag starts with a digit.
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> Any:
        for pattern, replacement in _ECHOES:
            message = pattern.sub(replacement, message)
        raise UsageError(f"{self.prog}: {message} (see --help)")


def unrecognized(extras: Sequence[str]) -> str:
    """The unknown arguments by flag name only: ``--env`` of ``--env=TOKEN``, not its value, nor
    the words after it (which may be values)."""
    flags = [e.split("=", 1)[0] for e in extras if e.startswith("-") and len(e) > 1]
    others = len(extras) - len(flags)
    named = ", ".join(dict.fromkeys(flags))
    more = f"{others} more argument(s), not shown" if others else ""
    return "unrecognized arguments: " + "; ".join(part for part in (named, more) if part)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kubeswarm",
        description="Distributed Locust load tests inside Kubernetes that record and judge what "
        "your HorizontalPodAutoscalers do. Every flag can also be set in a YAML --config file "
        "(key = long flag without dashes: spawn-rate) or as KUBESWARM_<FLAG> in the environment "
        "(KUBESWARM_SPAWN_RATE).",
    )
    parser.add_argument("--version", action="version", version=f"kubeswarm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.summary, description=command.summary)
        for name, nargs, text in command.positional:
            sub.add_argument(name, nargs=None if nargs == "1" else nargs, help=text)
        sub.add_argument("--config", type=Path, metavar="FILE", help="YAML file of options")
        for name in command.options:
            _add_option(sub, name, command.help.get(name))
    return parser


def _add_option(parser: argparse.ArgumentParser, name: str, text: str | None = None) -> None:
    option = OPTIONS[name]
    default_text = "" if option.default in (None, (), False) else f" (default: {option.default})"
    if name.endswith("_s") and isinstance(option.default, float):
        default_text = f" (default: {option.default:g}s)"
    if text is not None:
        option = replace(option, help=text)
        default_text = "" if "(default" in text else default_text
    if option.switch:
        parser.add_argument(
            *option.flags, dest=name, action="store_true", default=None, help=option.help
        )
    else:
        parser.add_argument(
            *option.flags,
            dest=name,
            default=None,
            action="append" if option.multiple else "store",
            metavar=option.metavar or name.upper(),
            help=option.help + default_text,
        )


Handler = Callable[[Mapping[str, Any], argparse.Namespace, TextIO], int]


def _handler(name: str) -> Handler:
    from harness.cli import commands

    handlers: dict[str, Handler] = {
        "demo": commands.demo,
        "run": commands.run,
        "report": commands.report,
        "render": commands.render,
        "ui": commands.ui,
        "list": commands.list_runs,
        "clean": commands.clean,
        "sample": commands.sample,
        "compare": commands.compare,
        "fetch": commands.fetch,
        "attach": commands.attach,
    }
    return handlers[name]


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Entry point of ``kubeswarm`` and ``kubectl-swarm``; returns the process exit code."""
    out = out or sys.stdout
    env = os.environ if environ is None else environ
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            parser.error(unrecognized(extras))
        if args.command is None:
            parser.print_help(out)
            return EXIT_USAGE
        command = next(c for c in COMMANDS if c.name == args.command)
        flags = {name: getattr(args, name, None) for name in command.options}
        values = merge_sources(flags, env, args.config, command.options)
        # what a second kubeswarm (a detached run's controller) is to be given: flags typed,
        # KUBESWARM_* and the --config file alike
        args.raw_texts = raw_texts(flags, env, args.config, command.options)
        check_command(command.name, values)
        return _handler(command.name)(values, args, out)
    except KubeswarmError as e:
        print(f"kubeswarm: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        print("kubeswarm: interrupted", file=sys.stderr)
        return interrupted_exit(e)
