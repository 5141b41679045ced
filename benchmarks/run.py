"""Run every benchmark (or those named) and write BENCHMARKS.md.

    python -m benchmarks.run                 # all of them
    python -m benchmarks.run sync inbound    # bench_sync.py and bench_inbound.py only
    python -m benchmarks.run binary          # bench_binary.py: dist/shopimind-sidecar
    make bench BENCH=binary                  # the same, through the Makefile

A benchmark is a `benchmarks/bench_<name>.py` module printing its Markdown section: it is
found by that name, nothing else registers it.

Each benchmark runs in its own Python process, one after the other, so memory figures are
its own and two benchmarks never share the machine's two cores. A section whose benchmark
was not run is kept from the previous BENCHMARKS.md.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "BENCHMARKS.md"
_SECTION = re.compile(
    r"^<!-- bench:(?P<name>[a-z_]+) -->\n(?P<body>.*?)(?=^<!-- bench:|\Z)", re.M | re.S
)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text(encoding="utf-8").split()[1])
        memory = f", {total_kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def _names(requested: list[str]) -> list[str]:
    available = sorted(
        p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py")
    )
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}"
        )
    return requested or available


def main() -> int:
    """Run the benchmarks and rewrite BENCHMARKS.md."""
    names = _names(sys.argv[1:])
    previous = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    sections = {m["name"]: m["body"].strip() for m in _SECTION.finditer(previous)}
    for name in names:
        print(f"== {name} ==", file=sys.stderr, flush=True)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", f"benchmarks.bench_{name}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stderr.write(result.stderr[-4000:])
        if result.returncode != 0:
            print(f"benchmark {name} failed (exit {result.returncode})", file=sys.stderr)
            return 1
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sections[name] = (
            f"{result.stdout.strip()}\n\n_Measured {stamp} in {time.monotonic() - started:.0f} s "
            f"on {_machine()}._"
        )
    body = "\n\n".join(f"<!-- bench:{name} -->\n{sections[name]}" for name in sorted(sections))
    REPORT.write_text(
        "# Benchmarks\n\n"
        "Measured by `make bench` (`python -m benchmarks.run [name…]`; one benchmark:\n"
        "`make bench BENCH=binary`); each section says when and on which machine. Timings\n"
        "drift ±20% from run to run on these machines, so each benchmark compares ratios\n"
        "measured within one run.\n\n" + body + "\n",
        encoding="utf-8",
    )
    print(f"wrote {REPORT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
