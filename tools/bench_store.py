"""Benchmark the results store (not a test): recording cost of a 500-host run, and how
fast history/diff/show answer over many stored runs.

    .venv/bin/python tools/bench_store.py [--hosts 500] [--runs 1000] [--store PATH|URL]

The report recorded is a real audit of the bundled example app (every check of the
validate suite, with its real details), cloned to N hosts; one host in ten gets a
host-specific message so findings are not all shared. Prints one line per measure.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from readiness.api import validate
from readiness.model import FleetReport, HostReport, utcnow
from readiness.store import open_store
from readiness.store.diff import diff_reports
from readiness.store.location import parse_location
from readiness.store.record import run_meta

ROOT = Path(__file__).resolve().parent.parent


def fleet_report(hosts: int, seed: int) -> FleetReport:
    base = validate(
        "local", inventory=None, profile_overrides={"app_root": str(ROOT / "examples/mahavishnu")}
    )
    template = base.hosts[0]
    rng = random.Random(seed)  # noqa: S311 - benchmark data, not secrets
    out = []
    for i in range(hosts):
        name = f"web{i:04d}"
        results = []
        for r in template.results:
            message = r.message
            if rng.random() < 0.1:
                message = f"{message} (host {name}, sample {rng.randint(0, 3)})"
            results.append(replace(r, host=name, message=message, duration_s=rng.random()))
        out.append(
            HostReport(
                host=name,
                results=tuple(results),
                address=f"10.0.{i // 250}.{i % 250}",
                groups=("web", "prod"),
            )
        )
    return replace(base, hosts=tuple(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--store", default="")
    args = ap.parse_args()
    location = parse_location(
        args.store or str(Path(tempfile.mkdtemp(prefix="bench-store-")) / "h.sqlite3")
    )
    reports = [fleet_report(args.hosts, seed) for seed in range(3)]
    print(
        f"store {location.display}; {args.hosts} hosts x {len(reports[0].hosts[0].results)} checks per run"
    )
    timings = []
    with open_store(location) as store:
        for i in range(args.runs):
            meta = run_meta(
                "validate",
                "web",
                started=utcnow(),
                argv=["readiness", "validate", "--hosts", "web"],
            )
            began = time.perf_counter()
            store.record(reports[i % len(reports)], meta)
            timings.append(time.perf_counter() - began)
            if i in (0, 9, 99) or (i + 1) % 250 == 0:
                print(
                    f"  recorded {i + 1} runs; last record {timings[-1] * 1000:.0f} ms", flush=True
                )
        if timings:
            print(
                f"record one run: median {statistics.median(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms"
            )
        for label, fn in (
            ("history (50 newest runs)", lambda: store.runs(limit=50)),
            (
                "history --since 1d (all runs)",
                lambda: store.runs(since=utcnow().replace(year=2000)),
            ),
            ("show latest (load one run)", lambda: store.load("latest")),
            (
                "diff latest~1 latest",
                lambda: diff_reports(store.load("latest~1").report, store.load("latest").report),
            ),
            (
                "history --hosts web0007 (timeline)",
                lambda: (
                    store.host_groups(),
                    store.timeline(hosts=["web0007"], check=None, since=None),
                ),
            ),
            (
                "history --check environment (timeline)",
                lambda: store.timeline(hosts=None, check="environment", since=None),
            ),
        ):
            began = time.perf_counter()
            fn()
            print(f"{label}: {(time.perf_counter() - began) * 1000:.0f} ms")
    if location.path is not None:
        size = sum(p.stat().st_size for p in location.path.parent.glob(location.path.name + "*"))
        print(f"store size: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
