"""`make bench`: run the benchmarks, write bench/results.json and render docs/performance.md from it.

    python -m bench.run                      # everything (several minutes: 1e5 items into moto, synth)
    python -m bench.run --only cold_import   # one or more sections, merged into the existing results
    python -m bench.run --quick              # small sizes, for a smoke run (figures not comparable)
    python -m bench.run --render-only        # re-render docs/performance.md from bench/results.json
    python -m bench.run --only campaign_pacing --campaign-recipients 2000   # a smaller pacing run

Each section reports its figure beside a baseline measured in the same run. The exit status is 0 when
every section ran (goals missed are reported, not failed), 1 when a section could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "performance.md"
SECTIONS = (
    "cold_import",
    "webhook_latency",
    "aws_calls_per_message",
    "dsr_scaling",
    "sender_throughput",
    "aws_cost",
    "synth_seconds",
    "media_memory",
    "media_send_memory",
    "campaign_pacing",
)


def _quiet_runtime() -> None:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _say(text: str) -> None:
    """Progress on stderr: stdout is where the functions print their EMF metrics, silenced while measuring."""
    print(text, file=sys.stderr, flush=True)


def _section(name: str, quick: bool, recipients: int | None = None) -> Callable[[], dict[str, Any]]:
    if name == "cold_import":
        from bench import cold_import

        return lambda: cold_import.run(samples=5 if quick else 15, warmup=1 if quick else 2)
    if name == "webhook_latency":
        from bench import latency

        return lambda: latency.run(deliveries=200 if quick else 1000)
    if name == "aws_calls_per_message":
        from bench import aws_calls

        return lambda: aws_calls.run(*((10, 5, 20, 20) if quick else (100, 10, 200, 200)))
    if name == "dsr_scaling":
        from bench import dsr

        return lambda: dsr.run(sizes=(100, 1_000) if quick else dsr.SIZES, repeats=2 if quick else 5)
    if name == "sender_throughput":
        from bench import sender

        return lambda: sender.run(messages=40 if quick else 300)
    if name == "aws_cost":
        from bench import cost

        return lambda: cost.run(*((20, 20) if quick else (200, 200)))
    if name == "synth_seconds":
        from bench import synth

        return lambda: synth.run(repeats=1 if quick else 2)
    if name == "media_memory":
        from bench import media

        return lambda: media.run(size_mb=10 if quick else 100)
    if name == "media_send_memory":
        from bench import media_send

        return lambda: media_send.run(size_mb=10 if quick else 100)
    if name == "campaign_pacing":
        from bench import pacing

        return lambda: pacing.run(recipients=recipients or (300 if quick else 10_000))
    raise ValueError(f"unknown section {name!r}; one of {', '.join(SECTIONS)}")


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=str(ROOT), capture_output=True, text=True, check=False)
        return out.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "lambdas"))}


def _machine() -> dict[str, Any]:
    from bench.stack import load_average

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run; not comparable)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument(
        "--campaign-recipients", type=int, default=None, help="campaign_pacing's size (10,000; --quick 300)"
    )
    args = parser.parse_args(argv)

    from bench import render

    if args.render_only:
        results = json.loads(args.out.read_text())
        args.doc.write_text(render.markdown(results))
        print(f"bench: rendered {args.doc}")
        return 0

    _quiet_runtime()
    sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "lambdas")) if p not in sys.path]
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    for name in chosen:
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}")
    results: dict[str, Any] = {}
    if args.only and args.out.exists():
        results = json.loads(args.out.read_text())
    results.update(
        {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "machine": _machine(),
            "git": _git(),
        }
    )
    failed = []
    for name in chosen:
        _say(f"bench: {name} ...")
        started = time.perf_counter()
        try:
            with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                figure = _section(name, args.quick, args.campaign_recipients)()
        except Exception as exc:  # a section that cannot run is reported, the others still run
            traceback.print_exc()
            figure = {"error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        figure["bench_seconds"] = round(time.perf_counter() - started, 1)
        results[name] = figure
        print(
            f"bench: {name} done in {figure['bench_seconds']} s: {render.headline(name, figure)}", flush=True
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    from bench.stack import load_average

    results["machine"]["load_average_at_end"] = load_average()
    results["goals"] = {
        name: results[name].get("met") for name in SECTIONS if isinstance(results.get(name), dict)
    }
    args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render.markdown(results))
    _say(f"bench: wrote {args.out} and {args.doc}")
    if failed:
        _say(f"bench: sections that could not run: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
