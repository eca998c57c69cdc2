#!/usr/bin/env python3
"""How route lookups scale with the table: 100, 1,000 and 10,000 URL prefixes.

Each table mixes the four http.sys buckets (~10% strong ``+``, ~50% explicit host names, ~15% IP-bound,
~25% weak ``*``) on three ports, with paths of 1-4 segments. For each size it prints the build time
and, per case, lookups per second and microseconds per lookup:

- hit: a path inside a random prefix (a quarter of them exactly the prefix less its slash), uniform
  over the whole table, so a large table also pays CPU cache misses;
- hot hit: the same, drawn from 100 of the prefixes only, as real traffic concentrates: this column
  shows the algorithm's own cost, which should not grow with the table;
- 404: a known host with an unregistered path (the trie walk ends at once);
- 400: an unknown port, answered before any walk.

The cases and sizes are timed in interleaved rounds and the best round is kept, so drift on a shared
machine hits every column alike. The last lines time ``normalize_path``, the other per-request cost.

Usage: python bench/routing_lookup.py [--rounds N] [--batch N] [--seed N]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable

sys.path.insert(0, __file__.rsplit("/bench/", 1)[0])

from orchestrator.model.urlprefix import UrlPrefix, parse_prefix
from orchestrator.routing import Match, NoHost, NoPath, RouteTable, normalize_path

SIZES = (100, 1_000, 10_000)
WORDS = ["api", "app", "static", "v1", "v2", "users", "orders", "admin", "reports", "auth", "img"]
PORTS = [80, 443, 8080]
IPS = ["127.0.0.1", "10.0.0.1", "10.0.0.2", "[::1]"]
CASES = ("hit", "hot hit", "404", "400")
Request = tuple[str, int, str, str, str]


def make_prefixes(count: int, rng: random.Random) -> list[UrlPrefix]:
    """``count`` distinct prefixes over the four buckets and three ports."""
    hosts = [f"site{i}.example.com" for i in range(max(count // 20, 1))]
    prefixes: set[UrlPrefix] = set()
    while len(prefixes) < count:
        roll = rng.random()
        if roll < 0.10:
            host = "+"
        elif roll < 0.60:
            host = rng.choice(hosts)
        elif roll < 0.75:
            host = rng.choice(IPS)
        else:
            host = "*"
        port = rng.choice(PORTS)
        scheme = "https" if port == 443 else "http"
        segments = [rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
        segments.insert(rng.randint(0, len(segments)), f"svc{rng.randrange(count)}")
        prefixes.add(parse_prefix(f"{scheme}://{host}:{port}/{'/'.join(segments)}/"))
    return sorted(prefixes)


def hit_for(prefix: UrlPrefix, rng: random.Random) -> Request:
    """A request that the prefix matches (a higher bucket may still take it: it is a hit anyway)."""
    if prefix.host_kind.name == "IP":
        ip, host = prefix.host.strip("[]"), "www.example.org"
    else:
        ip = "192.0.2.1"
        host = prefix.host if prefix.host not in ("+", "*") else "www.example.org"
    # Clients keep their own case; a quarter end exactly at the prefix less its slash.
    tail = rng.choice(["", "/", "/Item/42", "/a/b/c/d"])
    return (prefix.scheme, prefix.port, ip, host, prefix.path[:-1].replace("svc", "Svc") + tail)


def make_cases(prefixes: list[UrlPrefix], rng: random.Random, n: int) -> dict[str, list[Request]]:
    """The requests of each case, ``n`` of each."""
    hot = rng.sample(prefixes, min(100, len(prefixes)))
    hits = [hit_for(rng.choice(prefixes), rng) for _ in range(n)]
    return {
        "hit": hits,
        "hot hit": [hit_for(rng.choice(hot), rng) for _ in range(n)],
        "404": [(s, p, i, h, f"/nothing{rng.randrange(1000)}/here/x") for s, p, i, h, _ in hits],
        "400": [(s, 9999, i, h, path) for s, _, i, h, path in hits],
    }


EXPECTED: dict[str, type] = {"hit": Match, "hot hit": Match, "404": NoPath, "400": NoHost}


def batch(table: RouteTable[int], requests: list[Request], kind: type) -> Callable[[], None]:
    """A closure that looks up every request once (after checking each gives ``kind``)."""
    lookup = table.lookup
    for request in requests:
        result = lookup(*request)
        assert isinstance(result, kind), (request, result)

    def run() -> None:
        for scheme, port, ip, host, path in requests:
            lookup(scheme, port, ip, host, path)

    return run


def best_seconds(runs: dict[object, Callable[[], None]], rounds: int) -> dict[object, float]:
    """Best time of each run over interleaved rounds, with the garbage collector off."""
    best = dict.fromkeys(runs, float("inf"))
    gc.disable()
    try:
        for _ in range(rounds):
            for key, run in runs.items():
                start = time.perf_counter()
                run()
                best[key] = min(best[key], time.perf_counter() - start)
    finally:
        gc.enable()
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--batch", type=int, default=1000, help="lookups per case and round")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    builds: dict[int, float] = {}
    runs: dict[object, Callable[[], None]] = {}
    for size in SIZES:
        rng = random.Random(args.seed)
        entries = [(prefix, index) for index, prefix in enumerate(make_prefixes(size, rng))]
        build_s = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            table = RouteTable.build(entries)
            build_s = min(build_s, time.perf_counter() - start)
        builds[size] = build_s
        for case, requests in make_cases([p for p, _ in entries], rng, args.batch).items():
            runs[(size, case)] = batch(table, requests, EXPECTED[case])
    best = best_seconds(runs, args.rounds)
    us = {key: seconds / args.batch * 1e6 for key, seconds in best.items()}

    print(f"seed {args.seed}; best of {args.rounds} interleaved rounds of {args.batch} lookups\n")
    print(f"{'prefixes':>9} {'build':>9}" + "".join(f" {c:>18}" for c in CASES))
    print(f"{'':>9} {'':>9}" + f" {'lookups/s     us':>18}" * len(CASES))
    for size in SIZES:
        cells = "".join(f" {1e6 / us[(size, c)]:>11,.0f} {us[(size, c)]:>6.2f}" for c in CASES)
        print(f"{size:>9} {builds[size] * 1000:>7.1f}ms{cells}")
    ratios = ", ".join(f"{c} {us[(SIZES[-1], c)] / us[(SIZES[0], c)]:.2f}x" for c in CASES)
    print(f"\nper-lookup cost, {SIZES[-1]:,} vs {SIZES[0]} prefixes: {ratios}")

    targets = [b"/api/v1/users/42", b"/App/Static/img/logo.png", b"/a/../b//c/%7Euser/x?q=1"]

    def normalizing(target: bytes) -> Callable[[], None]:
        def run() -> None:
            for _ in range(args.batch):
                normalize_path(target)

        return run

    times = best_seconds({t: normalizing(t) for t in targets}, max(args.rounds // 4, 1))
    for target, seconds in times.items():
        assert isinstance(target, bytes)
        print(f"normalize_path({target.decode()!r}): {seconds / args.batch * 1e6:.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
