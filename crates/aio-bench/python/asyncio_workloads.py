#!/usr/bin/env python3
"""Python asyncio twins of the aio-bench workloads (Python 3.11+; 3.12+ for the eager one).

Shapes follow /work/shared/bench/asyncio_baseline.py. Each workload prints one line:

    name ops=N secs=S ns_per_op=X

Usage: asyncio_workloads.py [--scale S] [--filter NAME]

To add a workload, write `async def f(n) -> float` (run n ops, check the result, return the
seconds the work took) and decorate it with `@workload("name", ops_at_scale_1)`, using the
same name as the Rust workload.
"""
import argparse
import asyncio
import functools
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


if hasattr(asyncio, "eager_task_factory"):  # Python 3.12+; older versions report no figure
    @workload("taskgroup_spawn_eager", 100_000)
    async def spawn_eager(n):
        done = 0

        async def t(i):
            nonlocal done
            if i % 10 == 0:
                await asyncio.sleep(0)
            done += 1
            return 1

        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        try:
            t0 = time.perf_counter()
            async with asyncio.TaskGroup() as tg:
                for i in range(n):
                    tg.create_task(t(i))
            secs = time.perf_counter() - t0
        finally:
            loop.set_task_factory(None)
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


@workload("timeout_fire_10k", 10_000)
async def timeout_fire_10k(n):
    fired = 0

    async def t():
        nonlocal fired
        try:
            async with asyncio.timeout(0.001):
                await asyncio.sleep(3600)
        except TimeoutError:
            fired += 1

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(t())
    secs = time.perf_counter() - t0
    assert fired == n, (fired, n)
    return secs


async def chain(level, depth):
    # The task at `level` opens a group and spawns the next level; the deepest returns.
    if level == depth:
        return 1
    async with asyncio.TaskGroup() as tg:
        below = tg.create_task(chain(level + 1, depth))
    return below.result() + 1


async def group_chain_depth(n):
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        top = tg.create_task(chain(1, n))
    secs = time.perf_counter() - t0
    assert top.result() == n, (top.result(), n)
    return secs


workload("group_chain_depth_1k", 1_000)(group_chain_depth)
workload("group_chain_depth_10k", 10_000)(group_chain_depth)


@workload("gather", 100_000)
async def gather(n):
    async def t(i):
        return i

    t0 = time.perf_counter()
    r = await asyncio.gather(*(t(i) for i in range(n)))
    secs = time.perf_counter() - t0
    assert r == list(range(n)), "results missing or out of order"
    return secs


async def branch(i):
    # Pending i + 1 times, then i: the in-task workloads' branch.
    for _ in range(i + 1):
        await asyncio.sleep(0)
    return i


@workload("race4_in_task", 100_000)
async def race4_in_task(n):
    total = 0
    t0 = time.perf_counter()
    for _ in range(n):
        tasks = [asyncio.ensure_future(branch(i)) for i in range(4)]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        total += min(t.result() for t in done)
    secs = time.perf_counter() - t0
    assert total == 0, total
    return secs


@workload("join4_in_task", 100_000)
async def join4_in_task(n):
    total = 0
    t0 = time.perf_counter()
    for _ in range(n):
        total += sum(await asyncio.gather(branch(0), branch(1), branch(2), branch(3)))
    secs = time.perf_counter() - t0
    assert total == 6 * n, total
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



# --- Synchronisation primitives -------------------------------------------------------
#
# The contended rows (lock_contended, semaphore_limit10) share a fixed number of
# acquisitions among their tasks: each task takes a ticket, then acquires, until no ticket
# is left. With a fair primitive every task gets about as many turns.


def share(n, k, parts):
    # Part k of range(n) split into `parts` nearly equal runs, as the Rust runner does.
    return range(n * k // parts, n * (k + 1) // parts)


@workload("lock_contended", 100_000)
async def lock_contended(n, tasks=100, await_inside=True):
    lock = asyncio.Lock()
    tickets = n
    holders = peak = 0

    async def w():
        nonlocal tickets, holders, peak
        mine = 0
        while tickets > 0:
            tickets -= 1
            async with lock:
                holders += 1
                peak = max(peak, holders)
                if await_inside:
                    await asyncio.sleep(0)
                holders -= 1
            mine += 1
        return mine

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        workers = [tg.create_task(w()) for _ in range(min(tasks, n))]
    secs = time.perf_counter() - t0
    counts = [t.result() for t in workers]
    assert sum(counts) == n and tickets == 0, (sum(counts), n, tickets)
    assert peak == 1, peak
    return secs


workload("lock_4tasks_noawait", 100_000)(
    functools.partial(lock_contended, tasks=4, await_inside=False))


@workload("lock_uncontended", 1_000_000)
async def lock_uncontended(n):
    lock = asyncio.Lock()
    held = 0
    t0 = time.perf_counter()
    for _ in range(n):
        async with lock:
            held += lock.locked()
    secs = time.perf_counter() - t0
    assert held == n and not lock.locked(), (held, n)
    return secs


@workload("semaphore_uncontended", 1_000_000)
async def semaphore_uncontended(n):
    sem = asyncio.Semaphore(1)
    acquired = 0
    t0 = time.perf_counter()
    for _ in range(n):
        async with sem:
            acquired += 1
    secs = time.perf_counter() - t0
    assert acquired == n
    return secs


@workload("semaphore_limit10", 100_000)
async def semaphore_limit10(n, tasks=100, limit=10):
    sem = asyncio.Semaphore(limit)
    tickets = n
    holders = peak = 0

    async def w():
        nonlocal tickets, holders, peak
        mine = 0
        while tickets > 0:
            tickets -= 1
            async with sem:
                holders += 1
                peak = max(peak, holders)
                await asyncio.sleep(0)
                holders -= 1
            mine += 1
        return mine

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        workers = [tg.create_task(w()) for _ in range(min(tasks, n))]
    secs = time.perf_counter() - t0
    counts = [t.result() for t in workers]
    assert sum(counts) == n and tickets == 0, (sum(counts), n, tickets)
    assert 1 <= peak <= limit, (peak, limit)
    return secs


@workload("event_pingpong", 100_000)
async def event_pingpong(n):
    ping, pong = asyncio.Event(), asyncio.Event()

    async def ponger():
        for _ in range(n):
            await ping.wait()
            ping.clear()
            pong.set()

    t0 = time.perf_counter()
    rounds = 0
    async with asyncio.TaskGroup() as tg:
        tg.create_task(ponger())
        for _ in range(n):
            ping.set()
            await pong.wait()
            pong.clear()
            rounds += 1
    secs = time.perf_counter() - t0
    assert rounds == n
    return secs


@workload("event_wake_all", 10_000)
async def event_wake_all(n):
    # Timed from set() until every waiter has returned; spawning the waiters is not timed.
    ev = asyncio.Event()
    arrived = 0

    async def w():
        nonlocal arrived
        arrived += 1
        await ev.wait()
        return ev.is_set()

    async with asyncio.TaskGroup() as tg:
        waiters = [tg.create_task(w()) for _ in range(n)]
        while arrived < n:
            await asyncio.sleep(0)
        assert not any(t.done() for t in waiters), "a waiter returned before set()"
        t0 = time.perf_counter()
        ev.set()
    secs = time.perf_counter() - t0
    assert all(t.result() for t in waiters), "a waiter returned with the event not set"
    return secs


async def queue_spsc(n, maxsize):
    q = asyncio.Queue(maxsize)

    async def prod():
        for i in range(n):
            await q.put(i)

    async def cons():
        in_order = 0
        for i in range(n):
            in_order += await q.get() == i
        return in_order

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(prod())
        consumer = tg.create_task(cons())
    secs = time.perf_counter() - t0
    assert consumer.result() == n, "items lost, repeated or out of order"
    return secs


async def queue_mpmc(n, p, c, maxsize):
    q = asyncio.Queue(maxsize)

    async def prod(items):
        for i in items:
            await q.put(i)

    async def cons(k):
        got = []
        for _ in range(k):
            got.append(await q.get())
        return got

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for k in range(p):
            tg.create_task(prod(share(n, k, p)))
        consumers = [tg.create_task(cons(len(share(n, k, c)))) for k in range(c)]
    secs = time.perf_counter() - t0
    seen = bytearray(n)
    for t in consumers:
        for i in t.result():
            assert not seen[i], f"item {i} arrived twice"
            seen[i] = 1
    assert all(seen), "an item was lost"
    return secs


for _maxsize in (128, 1024):
    workload(f"queue_spsc_bounded{_maxsize}", 1_000_000)(
        functools.partial(queue_spsc, maxsize=_maxsize))
for _side, _maxsize in ((4, 128), (4, 1024), (16, 128), (16, 1024)):
    workload(f"queue_mpmc_{_side}x{_side}_bounded{_maxsize}", 1_000_000)(
        functools.partial(queue_mpmc, p=_side, c=_side, maxsize=_maxsize))


@workload("condition_notify", 100_000)
async def condition_notify(n):
    # Two tasks take turns through a Condition: each waits for its turn, takes it, and
    # notifies the other. One op is one turn.
    cond = asyncio.Condition()
    turn = 0

    async def player(me):
        nonlocal turn
        mine = 0
        while True:
            async with cond:
                await cond.wait_for(lambda: turn >= n or turn % 2 == me)
                if turn >= n:
                    return mine
                turn += 1
                mine += 1
                cond.notify(1)

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        players = [tg.create_task(player(me)) for me in range(2)]
    secs = time.perf_counter() - t0
    assert turn == n, (turn, n)
    assert [t.result() for t in players] == [n - n // 2, n // 2], "turns out of alternation"
    return secs


def noop(x):
    return x


@workload("to_thread_sequential", 10_000)
async def to_thread_sequential(n):
    total = 0
    t0 = time.perf_counter()
    for i in range(n):
        total += await asyncio.to_thread(noop, i)
    secs = time.perf_counter() - t0
    assert total == n * (n - 1) // 2, "a result is wrong"
    return secs


@workload("to_thread_concurrent", 10_000)
async def to_thread_concurrent(n):
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        calls = [tg.create_task(asyncio.to_thread(noop, i)) for i in range(n)]
    secs = time.perf_counter() - t0
    assert sum(t.result() for t in calls) == n * (n - 1) // 2, "a result is wrong"
    return secs


async def process_pool_run(n, work):
    # A pool of two warm workers, as the Rust side has; only `work` is timed.
    import concurrent.futures as cf
    loop = asyncio.get_running_loop()
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        warm = [loop.run_in_executor(pool, noop, i) for i in range(2)]
        assert await asyncio.gather(*warm) == [0, 1]
        t0 = time.perf_counter()
        out = await work(loop, pool)
        secs = time.perf_counter() - t0
    assert out == list(range(n)), "lost or reordered results"
    return secs


@workload("procpool_roundtrip_seq", 2_000)
async def procpool_roundtrip_seq(n):
    async def work(loop, pool):
        return [await loop.run_in_executor(pool, noop, i) for i in range(n)]
    return await process_pool_run(n, work)


@workload("procpool_submit_concurrent", 2_000)
async def procpool_submit_concurrent(n):
    async def work(loop, pool):
        return await asyncio.gather(*(loop.run_in_executor(pool, noop, i) for i in range(n)))
    return await process_pool_run(n, work)


@workload("procpool_map_chunk256", 20_000)
async def procpool_map_chunk256(n):
    async def work(loop, pool):
        return list(pool.map(noop, range(n), chunksize=256))
    return await process_pool_run(n, work)


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
