"""The command line: the only place that prints or exits.

``aerostat serve`` takes statsd_exporter's flags by the same names, so a user
swaps the command and keeps the rest."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from aerostat import __version__
from aerostat.errors import AerostatError
from aerostat.options import add_serve_flags, duration, positive_int, serve_options
from aerostat.parse import Dialects

if TYPE_CHECKING:
    from aerostat.frontend import BuiltIn

log = logging.getLogger("aerostat")


def _add_dialect_flags(parser: argparse.ArgumentParser) -> None:
    for dialect, what in (
        ("dogstatsd", "DogStatsD-style tags (|#k:v)"),
        ("influxdb", "InfluxDB-style tags (name,k=v)"),
        ("librato", "Librato-style tags (name#k=v)"),
        ("signalfx", "SignalFX-style tags (name[k=v])"),
    ):
        parser.add_argument(
            f"--statsd.parse-{dialect}-tags",
            dest=f"parse_{dialect}",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=f"Parse {what}.",
        )


def _dialects(args: argparse.Namespace) -> Dialects:
    return Dialects(
        dogstatsd=args.parse_dogstatsd,
        influxdb=args.parse_influxdb,
        librato=args.parse_librato,
        signalfx=args.parse_signalfx,
    )


def _add_logging_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=["debug", "info", "warn", "error"],
                        help="Only log messages with the given severity or above.")
    parser.add_argument("--log.format", dest="log_format", default="logfmt",
                        choices=["logfmt", "json"], help="Output format of log messages.")


class _Parser(argparse.ArgumentParser):
    """Mistakes on the command line in two lines: what is wrong, and where
    the help is; the full usage of serve alone is thirty lines, and the
    error came last."""

    def error(self, message: str) -> NoReturn:
        commands = [action for action in self._actions
                    if isinstance(action, argparse._SubParsersAction)]
        if commands and message.endswith(f"required: {commands[0].metavar}"):
            # argparse says "the following arguments are required: COMMAND"
            message = f"which command? One of: {', '.join(commands[0].choices)}"
        self.exit(2, f"{self.prog}: error: {message}\n"
                     f"Run '{self.prog} --help' to see what it takes.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aerostat",
        description="StatsD to Prometheus bridge: a drop-in for statsd_exporter.",
    )
    parser.add_argument("--version", action="version", version=f"aerostat {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="Receive StatsD and serve Prometheus metrics.")
    add_serve_flags(serve)
    serve.add_argument("--statsd.cache-type", dest="cache_type", default="lru",
                       choices=["lru", "random"],
                       help="Accepted for compatibility; aerostat's cache is always LRU.")
    _add_dialect_flags(serve)
    for tuning in ("event-queue-size", "event-flush-threshold", "event-flush-interval",
                   "udp-packet-queue-size"):
        serve.add_argument(f"--statsd.{tuning}", dest="ignored_" + tuning.replace("-", "_"),
                           default=None, metavar="VALUE",
                           help="Accepted for compatibility with statsd_exporter; "
                           "no effect (aerostat has no internal queue).")
    _add_airflow_flag(serve)
    _add_airflow_api_flags(serve)
    serve.add_argument("--check-config", dest="check_config", action="store_true",
                       help="Check the mapping configuration and exit.")
    _add_logging_flags(serve)

    map_command = commands.add_parser(
        "map", help="Show what StatsD lines become (from arguments or stdin)."
    )
    map_command.add_argument("--config", default=None, help="Mapping configuration file.")
    map_command.add_argument("--json", action="store_true", help="One JSON object per line.")
    _add_airflow_flag(map_command)
    _add_dialect_flags(map_command)
    map_command.add_argument("lines", nargs="*", metavar="LINE")

    replay = commands.add_parser(
        "replay", help="Feed StatsD files or JSON-lines captures through a fresh store "
        "and print the exposition."
    )
    replay.add_argument("--config", default=None, help="Mapping configuration file.")
    _add_airflow_flag(replay)
    _add_dialect_flags(replay)
    replay.add_argument("files", nargs="+", metavar="FILE")

    check = commands.add_parser(
        "check-config", help="Validate a mapping configuration file, or a web configuration "
        "file (--web.config.file).")
    check.add_argument("file", metavar="FILE", nargs="?", help="Mapping configuration file.")
    check.add_argument("--web.config.file", dest="web_config_file", default=None,
                       metavar="FILE", help="Web configuration file (TLS, basic auth) to check, "
                       "with the certificate, key and CA files it names.")

    airflow = commands.add_parser("airflow", help="The built-in Airflow mapping, for others.")
    airflow_commands = airflow.add_subparsers(dest="airflow_command", required=True,
                                              metavar="COMMAND")
    export = airflow_commands.add_parser(
        "mapping", help="Print the built-in mapping as a statsd_exporter mapping file.")
    export.add_argument(
        "--mode", choices=("plain", "tagged"), default="plain",
        help="plain: Airflow's default StatsD (keeps the dotted names); tagged: "
        "statsd_influxdb_enabled or statsd_datadog_enabled (keeps the tagged names).")
    airflow_commands.add_parser(
        "metrics", help="Print the list of exported Airflow metrics (Markdown).")
    _add_stack_command(commands)
    _add_up_command(commands)
    return parser


def _add_airflow_flag(command: argparse.ArgumentParser) -> None:
    # the defaults are the Airflow knowledge's, not written twice
    from aerostat.airflow import knowledge
    from aerostat.airflow.frontend import DEFAULT_DEPLOYMENT

    command.add_argument(
        "--airflow", action="store_true",
        help="Map Apache Airflow's metrics with the built-in mapping (under the mapping "
        "file, whose rules win), tell deployments apart and count each event once.")
    command.add_argument(
        "--airflow.sender-ttl", dest="airflow_sender_ttl", type=duration,
        default=knowledge.GAUGE_SENDER_TTL, metavar="DURATION",
        help="With --airflow: how long a silent process's share of a gauge that several "
        "processes report (executor slots, DAG counts) still counts. Default: %(default)ss.")
    command.add_argument(
        "--airflow.heartbeat-ttl", dest="airflow_heartbeat_ttl", type=duration,
        default=knowledge.HEARTBEAT_TTL, metavar="DURATION", help="With --airflow: how long "
        "a silent process's heartbeat series stays exported, stopped, so that alerts on it "
        "fire. Default: %(default)ss.")
    command.add_argument(
        "--airflow.heartbeat-silence", dest="airflow_heartbeat_silence", type=duration,
        default=knowledge.HEARTBEAT_SILENCE, metavar="DURATION", help="With --airflow: how "
        "long a scheduler, DAG processor or triggerer may send no heartbeat before its "
        "airflow_<process>_alive gauge reads 0. Default: %(default)ss.")
    command.add_argument(
        "--airflow.default-deployment", dest="airflow_default_deployment",
        default=DEFAULT_DEPLOYMENT, metavar="NAME", help="With --airflow: the deployment label "
        "of Airflow traffic whose statsd_prefix and tags name none. Default: %(default)s.")


def _add_airflow_api_flags(serve: argparse.ArgumentParser) -> None:
    from aerostat.airflow.api.source import POLL_INTERVAL

    def repeated(flag: str, metavar: str, text: str) -> None:
        serve.add_argument(flag, dest=flag.removeprefix("--").replace(".", "_").replace(
            "-", "_"), action="append", default=[], metavar=metavar, help=text)

    repeated("--airflow.api-url", "[DEPLOYMENT=]URL",
             "With --airflow: also poll this Airflow deployment's REST API (the API "
             "server's root, e.g. http://airflow:8080) for the state StatsD does not carry "
             "and the task outcomes it missed. Repeat it, each with its deployment's name, "
             "for several deployments; without a name, the default deployment.")
    repeated("--airflow.api-username", "[DEPLOYMENT=]USER",
             "User to log in to the API as (read access is enough).")
    repeated("--airflow.api-password-file", "[DEPLOYMENT=]FILE",
             "File holding that user's password (or set AEROSTAT_AIRFLOW_API_PASSWORD).")
    repeated("--airflow.api-token-file", "[DEPLOYMENT=]FILE",
             "File holding a bearer token for the API instead of a user (or set "
             "AEROSTAT_AIRFLOW_API_TOKEN); read again at every poll.")
    serve.add_argument("--airflow.api-ca-file", dest="airflow_api_ca_file", default="",
                       metavar="FILE", help="CA certificates to verify the API's TLS with.")
    serve.add_argument("--airflow.api-insecure-skip-verify", dest="airflow_api_insecure",
                       action="store_true", help="Do not verify the API's TLS certificate.")
    serve.add_argument("--airflow.api-poll-interval", dest="airflow_api_poll_interval",
                       type=duration, default=POLL_INTERVAL, metavar="DURATION",
                       help="How often to poll each API (with 10 %% jitter). "
                       "Default: %(default)ss.")
    serve.add_argument("--airflow.api-timeout", dest="airflow_api_timeout", type=duration,
                       default=10.0, metavar="DURATION",
                       help="Give up on a request after this long. Default: %(default)ss.")


def _built_in(args: argparse.Namespace) -> BuiltIn | None:
    if not args.airflow:
        if getattr(args, "airflow_api_url", None):
            raise AerostatError("needs --airflow", source="--airflow.api-url")
        return None
    from aerostat.airflow import airflow_built_in
    from aerostat.airflow.api.client import targets_from_flags

    targets = targets_from_flags(
        args.airflow_api_url, args.airflow_api_username, args.airflow_api_password_file,
        args.airflow_api_token_file, args.airflow_api_ca_file, args.airflow_api_insecure,
        args.airflow_api_timeout, args.airflow_default_deployment,
    ) if getattr(args, "airflow_api_url", None) else ()
    return airflow_built_in(args.airflow_sender_ttl, args.airflow_heartbeat_ttl,
                            args.airflow_default_deployment, args.airflow_heartbeat_silence,
                            targets, getattr(args, "airflow_api_poll_interval", 30.0))


def _serve(args: argparse.Namespace) -> int:
    from aerostat import logs
    from aerostat.server import Server, load_config

    logs.configure(args.log_level, args.log_format)
    if args.check_config:
        config = load_config(args.mapping_config)
        _built_in(args)  # the Airflow flags too: their files, URLs and names
        if args.web_config_file is not None:
            from aerostat.webconfig import load_web_config

            load_web_config(args.web_config_file)
        log.info("Configuration check successful", extra={"fields": {
            "mappings": len(config.rules)}})
        return 0
    for name, value in sorted(vars(args).items()):
        if name.startswith("ignored_") and value is not None:
            flag = "--statsd." + name.removeprefix("ignored_").replace("_", "-")
            log.info("Flag has no effect in aerostat", extra={"fields": {"flag": flag}})
    server = Server(serve_options(args, _dialects(args), _built_in(args)))
    server.start()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        log.info("Received signal, shutting down", extra={"fields": {
            "signal": signal.Signals(signum).name}})
        server.stop()

    def on_reload(signum: int, frame: FrameType | None) -> None:
        server.schedule_reload()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_reload)
    server.serve_forever()
    telemetry = server.telemetry
    log.info("Stopped", extra={"fields": {
        "udp_packets": telemetry.udp_packets, "udp_kernel_drops": telemetry.udp_kernel_drops,
        "lines": telemetry.lines}})
    return 0


def _read_lines(args: argparse.Namespace) -> list[str]:
    """The lines to explain; bytes that are not UTF-8 survive as surrogates
    so that the explainer can say so instead of the decoder failing."""
    if args.lines:
        return list(args.lines)
    return [raw.decode("utf-8", "surrogateescape").rstrip("\r\n") for raw in sys.stdin.buffer]


def _map(args: argparse.Namespace) -> int:
    from aerostat.offline import LineExplainer, describe
    from aerostat.server import load_config

    explainer = LineExplainer(load_config(args.config), _dialects(args), _built_in(args))
    for line in _read_lines(args):
        report = explainer.explain(line)
        if args.json:
            print(json.dumps(report, ensure_ascii=False))
        else:
            print(describe(report))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from aerostat.offline import read_datagrams, replay
    from aerostat.server import load_config

    config = load_config(args.config)
    datagrams: list[tuple[float, bytes]] = []
    for path in args.files:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as file:
                text = file.read()
        except OSError as error:
            raise AerostatError(f"cannot read: {error.strerror}", source=path) from None
        try:
            datagrams.extend(read_datagrams(text))
        except ValueError as error:
            raise AerostatError(str(error), source=path) from None
    sys.stdout.write(replay(datagrams, config, _dialects(args), _built_in(args)))
    return 0


def _airflow(args: argparse.Namespace) -> int:
    from aerostat.airflow.export import metrics_markdown, statsd_exporter_mapping

    if args.airflow_command == "mapping":
        sys.stdout.write(statsd_exporter_mapping(args.mode))
    else:
        sys.stdout.write(metrics_markdown())
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from aerostat.mapper import load_mapping_config

    if args.web_config_file is not None:
        from aerostat.webconfig import load_web_config

        web = load_web_config(args.web_config_file)
        users = len(web.users)
        print(f"{args.web_config_file}: OK, TLS {'on' if web.tls.enabled else 'off'}, "
              f"{users} basic-auth user{'' if users == 1 else 's'}")
        if args.file is None:
            return 0
    elif args.file is None:
        raise AerostatError("name a mapping file, or a web config file with --web.config.file",
                            source="check-config")
    config = load_mapping_config(args.file)
    count = len(config.rules)
    if count == 0:
        # valid, as upstream: but a user checking a file expects rules in it
        print(f"{args.file}: OK, but no mappings: every metric keeps its StatsD name "
              "(escaped), as with no mapping file")
    else:
        print(f"{args.file}: OK, {count} mapping{'s' if count > 1 else ''}")
    return 0


def _add_stack_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    stack = commands.add_parser("stack", help="The Prometheus and Grafana stack around aerostat.")
    stack_commands = stack.add_subparsers(dest="stack_command", required=True, metavar="COMMAND")
    render = stack_commands.add_parser(
        "render", help="Write Prometheus's configuration, rules and rule tests, an example "
        "Alertmanager configuration and Grafana's provisioning and dashboards into OUTDIR.")
    render.add_argument("outdir", metavar="OUTDIR")
    render.add_argument("--deployment", dest="deployments", action="append", default=[],
                        metavar="NAME", help="A deployment the dashboards show by default "
                        "(repeatable; default: all).")
    render.add_argument("--aerostat-target", dest="aerostat_targets", action="append",
                        metavar="HOST:PORT", help="Where Prometheus scrapes aerostat "
                        "(repeatable; default: 127.0.0.1:9102).")
    render.add_argument("--scrape-interval", default="15s",
                        help="Prometheus's scrape and rule interval, at most 30s.")
    render.add_argument("--prometheus-url", default="http://127.0.0.1:9090",
                        help="Prometheus as Grafana reaches it.")
    render.add_argument("--alertmanager", default=None, metavar="HOST:PORT",
                        help="Send alerts to this Alertmanager (default: none, an example "
                        "in comments).")
    render.add_argument("--grafana-dashboards-dir", default="/var/lib/grafana/dashboards/aerostat",
                        help="Where Grafana sees OUTDIR/grafana/dashboards.")


def _needs_the_stack_extra() -> None:
    """The dashboards are built with Grafana's SDK, an extra: the exporter
    alone installs without it."""
    try:
        import grafana_foundation_sdk  # noqa: F401
    except ImportError:
        raise AerostatError(
            "rendering the stack needs Grafana's SDK, which the exporter alone does not "
            "install: pip install 'aerostat[stack]' (./run aerostat up and stack install it)",
            source="aerostat stack") from None


def _stack(args: argparse.Namespace) -> int:
    _needs_the_stack_extra()
    from aerostat.stack import StackOptions, render_stack, write_stack

    options = StackOptions(
        deployments=tuple(args.deployments),
        aerostat_targets=tuple(args.aerostat_targets or StackOptions.aerostat_targets),
        scrape_interval=args.scrape_interval, prometheus_url=args.prometheus_url,
        alertmanager=args.alertmanager, grafana_dashboards_dir=args.grafana_dashboards_dir,
    )
    files = render_stack(options)
    for path in write_stack(args.outdir, files):
        print(f"removed {path}: no longer rendered")
    print(f"{args.outdir}: wrote {len(files)} files")
    return 0


def _port(text: str) -> int:
    value = positive_int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return value


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not above 0")
    return value


def _add_up_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    up = commands.add_parser(
        "up", help="Run aerostat, Prometheus and (when installed) Grafana on this machine, "
        "with the rendered rules and dashboards; no Docker needed.")
    up.add_argument("--demo", action="store_true",
                    help="Also replay a real Airflow capture into aerostat, in a loop, so "
                    "that the graphs fill without an Airflow.")
    up.add_argument("--demo-speed", type=_speed, default=1.0, metavar="N",
                    help="With --demo: replay N times as fast as the capture was recorded.")
    up.add_argument("--state-dir", default=None, metavar="DIR",
                    help="Prometheus's and Grafana's data, logs and the rendered "
                    "configuration (default: $XDG_STATE_HOME/aerostat or "
                    "~/.local/state/aerostat).")
    for name, default, what in (
        ("statsd", 9125, "StatsD port of aerostat, UDP and TCP, on every interface"),
        ("web", 9102, "aerostat's /metrics port, on 127.0.0.1"),
        ("prometheus", 9090, "Prometheus's port, on 127.0.0.1"),
        ("grafana", 3000, "Grafana's port, on 127.0.0.1"),
    ):
        up.add_argument(f"--{name}-port", type=_port, default=default, metavar="PORT",
                        help=f"{what} (default: {default}).")


def _up(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aerostat import logs

    _needs_the_stack_extra()
    from aerostat.stack.up import LocalStack, UpOptions, default_state_dir

    # the exporter runs in this process: its warnings only, so that the
    # progress stays readable
    logs.configure("warn", "logfmt")
    options = UpOptions(
        state_dir=Path(args.state_dir) if args.state_dir else default_state_dir(),
        statsd_port=args.statsd_port, web_port=args.web_port,
        prometheus_port=args.prometheus_port, grafana_port=args.grafana_port,
        demo=args.demo, demo_speed=args.demo_speed,
    )
    stack = LocalStack(options, report=lambda text: print(text, flush=True))

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stack.request_stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    return stack.run()


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # the command's own parser says it, so its --help is the one named
        command = _commands(parser).get(args.command, parser)
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    handlers = {"serve": _serve, "map": _map, "replay": _replay, "check-config": _check_config,
                "airflow": _airflow, "stack": _stack, "up": _up}
    try:
        return handlers[args.command](args)
    except AerostatError as error:
        print(f"aerostat: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
