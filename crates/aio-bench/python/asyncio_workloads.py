#!/usr/bin/env python3
"""Python asyncio twins of the aio-bench workloads (Python 3.11+).

Shapes follow /work/shared/bench/asyncio_baseline.py. Each workload prints one line:

    name ops=N secs=S ns_per_op=X

Usage: asyncio_workloads.py [--scale S] [--filter NAME]

To add a workload, write `async def f(n) -> float` (run n ops, check the result, return the
seconds the work took) and decorate it with `@workload("name", ops_at_scale_1)`, using the
same name as the Rust workload.
"""
import argparse
import asyncio
import sys
import time

WORKLOADS = []  # (name, ops at scale 1.0, async fn(n) -> seconds)


def workload(name, ops):
    def register(fn):
        WORKLOADS.append((name, ops, fn))
        return fn
    return register


def scale_ops(ops, scale):
    # The same rule as the Rust runner: max(1, int(ops * scale)).
    return max(1, int(ops * scale))


@workload("taskgroup_spawn_join", 100_000)
async def spawn_join(n):
    done = 0

    async def t():
        nonlocal done
        done += 1
        return 1

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(t())
    secs = time.perf_counter() - t0
    assert done == n, (done, n)
    return secs


@workload("taskgroup_spawn_yield", 100_000)
async def spawn_yield(n):
    done = 0

    async def t():
        nonlocal done
        await asyncio.sleep(0)
        done += 1
        return 1

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(t())
    secs = time.perf_counter() - t0
    assert done == n, (done, n)
    return secs


@workload("taskgroup_cancel_siblings", 10_000)
async def cancel_siblings(n):
    cancelled = 0

    async def sleeper():
        nonlocal cancelled
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled += 1
            raise

    async def boom():
        await asyncio.sleep(0)
        raise ValueError("boom")

    failed = None
    t0 = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(n):
                tg.create_task(sleeper())
            tg.create_task(boom())
    except* ValueError as eg:
        failed = eg
    secs = time.perf_counter() - t0
    assert failed is not None and len(failed.exceptions) == 1, failed
    # Every sleeper got to its first await before boom failed, so each saw the cancel.
    assert cancelled == n, (cancelled, n)
    return secs


@workload("timeout_no_fire", 100_000)
async def timeout_no_fire(n):
    async def fast():
        return 1

    total = 0
    t0 = time.perf_counter()
    for _ in range(n):
        async with asyncio.timeout(10):
            total += await fast()
    secs = time.perf_counter() - t0
    assert total == n, (total, n)
    return secs


@workload("nested_scopes", 100_000)
async def nested_scopes(n):
    async def fast():
        return 1

    total = 0
    t = asyncio.timeout
    t0 = time.perf_counter()
    for _ in range(n):
        # One `async with` naming several managers nests them, outermost first: depth 10.
        async with t(10), t(10), t(10), t(10), t(10), t(10), t(10), t(10), t(10), t(10):
            total += await fast()
    secs = time.perf_counter() - t0
    assert total == n, (total, n)
    return secs


@workload("gather", 100_000)
async def gather(n):
    async def t(i):
        return i

    t0 = time.perf_counter()
    r = await asyncio.gather(*(t(i) for i in range(n)))
    secs = time.perf_counter() - t0
    assert r == list(range(n)), "results missing or out of order"
    return secs


@workload("as_completed", 10_000)
async def as_completed(n):
    async def t(i):
        await asyncio.sleep(0)
        return i

    got = []
    t0 = time.perf_counter()
    # The plain iterator form: `async for` over as_completed needs Python 3.13.
    for f in asyncio.as_completed([t(i) for i in range(n)]):
        got.append(await f)
    secs = time.perf_counter() - t0
    assert sorted(got) == list(range(n)), "an index missing or repeated"
    return secs


@workload("limited_group", 100_000)
async def limited_group(n, limit=10):
    sem = asyncio.Semaphore(limit)
    done = active = peak = 0

    async def t():
        nonlocal done, active, peak
        async with sem:
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0)
            active -= 1
            done += 1

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(t())
    secs = time.perf_counter() - t0
    assert done == n, (done, n)
    assert active == 0, active
    assert 1 <= peak <= limit, (peak, limit)
    return secs


def report(name, ops, secs):
    print(f"{name} ops={ops} secs={secs:.6f} ns_per_op={secs / ops * 1e9:.1f}", flush=True)


async def main(scale, name_filter):
    for name, ops, fn in WORKLOADS:
        if name_filter and name_filter not in name:
            continue
        n = scale_ops(ops, scale)
        report(name, n, await fn(n))


if __name__ == "__main__":
    if sys.version_info < (3, 11):
        sys.exit("asyncio_workloads.py needs Python 3.11+ (asyncio.TaskGroup, asyncio.timeout)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--filter", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.scale, args.filter))
