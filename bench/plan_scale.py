#!/usr/bin/env python3
"""How plan time grows with the manifest: 100, 1,000 and 10,000 URL prefixes.

The top size has 1,000 queues and 1,000 worker pools (10 prefixes per URL group). For each size it
times make_plan (the pure diff, ordering and waves) in three situations: against empty live state
(everything is a create), against identical live state (no changes), and against live state where 1%
of the pools changed their command (a few replacements). Prints the best of several runs, the growth
ratio from one size to the next (10x more objects; linear growth is ~10x) and whether the 10,000-prefix
plan meets the 100 ms target.

Usage: python bench/plan_scale.py [--repeat N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from types import MappingProxyType

sys.path.insert(0, __file__.rsplit("/bench/", 1)[0])

from orchestrator.model import (
    DesiredState,
    Key,
    Kind,
    LiveState,
    RequestQueue,
    Session,
    UrlGroup,
    WorkerPool,
)
from orchestrator.plan import make_plan

TARGET_MS = 100.0


def build(prefixes: int) -> DesiredState:
    """A manifest with ``prefixes`` URL prefixes, 10 per group, one queue and pool per group."""
    s = Key(Kind.SESSION, "main")
    res: dict[Key, object] = {s: Session(key=s)}
    groups = max(prefixes // 10, 1)
    for g in range(groups):
        q = Key(Kind.QUEUE, f"q{g}")
        res[q] = RequestQueue(key=q, session=s)
        urls = tuple(sorted(f"http://+:8080/app{g}/part{i}/" for i in range(prefixes // groups)))
        gk = Key(Kind.URLGROUP, f"g{g}")
        res[gk] = UrlGroup(key=gk, session=s, queue=q, urls=urls)
        wk = Key(Kind.WORKER, f"w{g}")
        res[wk] = WorkerPool(key=wk, session=s, queue=q, command=("app", str(g)))
    return DesiredState.of(res, "0" * 64)  # type: ignore[arg-type]


def best_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for prefixes in (100, 1_000, 10_000):
        desired = build(prefixes)
        same = LiveState(resources=desired.resources, applied=desired.resources)
        changed = dict(desired.resources)
        for key in list(changed)[:: max(len(changed) // 30, 1)]:
            if key.kind is Kind.WORKER:
                pool = changed[key]
                assert isinstance(pool, WorkerPool)
                changed[key] = dataclasses.replace(pool, command=(*pool.command, "--v2"))
        some = LiveState(resources=MappingProxyType(changed), applied=MappingProxyType(changed))
        empty = LiveState.empty()
        rows.append(
            (
                prefixes,
                len(desired.resources),
                best_ms(lambda d=desired, e=empty: make_plan(d, e), args.repeat),
                best_ms(lambda d=desired, s=same: make_plan(d, s), args.repeat),
                best_ms(lambda d=desired, s=some: make_plan(d, s), args.repeat),
            )
        )
    print(
        f"{'prefixes':>9} {'objects':>8} {'all create':>12} {'no change':>11} {'1% change':>11}"
        f" {'growth':>8}"
    )
    previous = None
    for prefixes, objects, create, nochange, some in rows:
        growth = f"{create / previous:.1f}x" if previous else "-"
        print(
            f"{prefixes:>9} {objects:>8} {create:>10.1f}ms {nochange:>9.1f}ms {some:>9.1f}ms"
            f" {growth:>8}"
        )
        previous = create
    top = rows[-1]
    worst = max(top[2:])
    verdict = "meets" if worst < TARGET_MS else "MISSES"
    print(f"\n10,000-prefix plan: worst {worst:.1f} ms ({verdict} the {TARGET_MS:.0f} ms target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
