"""The `waguard` command: `serve`, `invoke`, `report`, `audit` and `console`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="waguard", description="waguard local runtime and tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{serve,invoke,report,audit,console}")

    serve = sub.add_parser("serve", help="run the whole stack locally (API, AWS endpoint, functions, queues)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=3000, help="API port (default 3000)")
    serve.add_argument("--aws-port", type=int, default=4566, help="AWS endpoint (moto) port (default 4566)")
    serve.add_argument(
        "--verbose", "-v", action="store_true", help="show the functions' logs and each request"
    )
    serve.add_argument(
        "--log-dir", type=Path, default=None, help="where function logs go (default .waguard/logs)"
    )
    serve.add_argument(
        "--forward-events",
        default=None,
        metavar="URL",
        help="POST every business event to URL as the deployed API destination would (key header printed)",
    )

    invoke = sub.add_parser("invoke", help="run one function's handler once with an event file")
    invoke.add_argument("function", help="logical function name: webhook, processor, messages-api, ...")
    invoke.add_argument("--event", required=True, help="JSON event file ('-' reads stdin)")
    invoke.add_argument(
        "--aws-endpoint", default=None, help="a running `waguard serve` AWS endpoint (default: a private one)"
    )

    report = sub.add_parser(
        "report", help="the data-protection report from the synthesized template", add_help=False
    )
    report.add_argument("args", nargs=argparse.REMAINDER)

    audit = sub.add_parser(
        "audit", help="check the deployed (or local) resources against the template", add_help=False
    )
    audit.add_argument("args", nargs=argparse.REMAINDER)

    console = sub.add_parser("console", help="the operators' web console on 127.0.0.1, signed as the caller")
    console.add_argument("--api", required=True, metavar="URL", help="the waguard API's base URL")
    console.add_argument("--port", type=int, default=8400, help="console port on 127.0.0.1 (default 8400)")
    console.add_argument(
        "--profile", default=None, help="AWS profile to sign with (default: the environment's credentials)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:  # everything after `report` belongs to the report's own parser
        from waguard import report

        return int(report.main(argv[1:]) or 0)
    if argv[:1] == ["audit"]:
        from waguard import audit

        return audit.main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "serve":
        from waguard import serve

        return serve.run(
            args.host,
            args.port,
            args.aws_port,
            verbose=args.verbose,
            log_dir=args.log_dir,
            forward_events=args.forward_events,
        )
    if args.command == "invoke":
        from waguard import invoke

        return invoke.run(args.function, args.event, args.aws_endpoint)
    if args.command == "console":
        from waguard import console

        return console.run(args.api, args.port, args.profile)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
