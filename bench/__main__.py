"""Run every benchmark (or those named on the command line) and write bench-results/<name>.json each.

Figures are rates and ratios measured on whatever machine runs them; each file records the command,
the machine's CPU count and load, and the time, because these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parents[1] / "bench-results"
ON_REQUEST = frozenset({"fuzz", "cluster"})
"""Run only when named (`python -m bench fuzz`, `python -m bench cluster`): fuzz is not a timed benchmark and takes
minutes; cluster needs root and runs a real node with 101 sites for minutes."""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. codecs")
    args = parser.parse_args()
    available = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    chosen = args.names or [name for name in available if name not in ON_REQUEST]
    unknown = set(chosen) - set(available)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; available: {available}")
    RESULTS.mkdir(exist_ok=True)
    for name in chosen:
        module = importlib.import_module(f"bench.bench_{name}")
        started = time.monotonic()
        figures = module.run()
        record = {
            "benchmark": name,
            "command": f"python -m bench {name}" if name in ON_REQUEST else f"make bench  (python -m bench {name})",
            "figures": figures,
            "seconds": round(time.monotonic() - started, 1),
            "machine": {"cpus": os.cpu_count(), "load_1m": os.getloadavg()[0], "python": platform.python_version()},
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()) + f"  -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
