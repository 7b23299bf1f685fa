#!/usr/bin/env python3
"""The seed's own methods, for `qfarm bench --python`.

Runs one workload one way -- the seed's sequential loop,
ProcessPoolExecutor().map, ThreadPoolExecutor().map, asyncio, or asyncio on
uvloop -- and prints one JSON object on stdout for the harness:

  {"method": "asyncio", "slots": 10, "tasks": 10, "ok": 10, "wall_s": 1.002,
   "t0_us": ..., "times_us": [[started, finished, received, submitted], ...],
   "usage": {"user_s": ..., "sys_s": ..., "voluntary_cs": ...,
             "involuntary_cs": ..., "peak_rss_bytes": ...,
             "baseline_rss_bytes": ...},
   "executors": ["ThreadPoolExecutor-0_0", ...], "error": ""}

Times are Unix microseconds. CPU time and context switches cover this
process and its pool's processes (reaped when the pool shuts down); peak RSS
sums this process's VmHWM (reset at the start) and each pool process's.
Python 3 standard library only (uvloop when importable).

  seed_methods.py --method=thread --kind=sleep --tasks=10 --arg=1000
"""

import argparse
import asyncio
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
import urllib.request
from urllib.parse import urlsplit


def now_us():
    return time.time_ns() // 1000


def executor_name():
    name = threading.current_thread().name
    if name == "MainThread":
        name = multiprocessing.current_process().name
    return name


def cpu_digest(units):
    digest = hashlib.sha256(b"qfarm").digest()
    for _ in range(units):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def action(task):
    """Runs one task on a blocking thread or process: the seed's action()."""
    kind, arg, text = task
    started = now_us()
    ok = True
    try:
        if kind == "sleep":
            time.sleep(arg / 1000.0)
        elif kind == "cpu":
            cpu_digest(arg)
        elif kind == "http":
            with urllib.request.urlopen(text, timeout=30) as response:
                response.read()
                ok = 200 <= response.status < 300
        # echo: nothing to do.
    except Exception:  # A failed task is counted, not fatal.
        ok = False
    return started, now_us(), ok, executor_name()


async def http_get(url):
    """A GET on asyncio streams (the standard library has no async client)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    path = parts.path or "/"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    code = int(status_line.split()[1])
    return 200 <= code < 300


async def action_async(task):
    kind, arg, text = task
    started = now_us()
    ok = True
    try:
        if kind == "sleep":
            await asyncio.sleep(arg / 1000.0)
        elif kind == "cpu":
            cpu_digest(arg)  # Holds up the loop, as it would in the seed.
        elif kind == "http":
            ok = await http_get(text)
    except Exception:
        ok = False
    return started, now_us(), ok, "asyncio"


def status_kb(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pool_children_hwm(pool):
    """Sum of VmHWM of a ProcessPoolExecutor's processes (before shutdown)."""
    processes = getattr(pool, "_processes", None) or {}
    return sum(status_kb(f"/proc/{pid}/status", "VmHWM") * 1024 for pid in processes)


def run_pool(pool_class, tasks, workers, chunksize, one_at_a_time, record):
    children_hwm = 0
    with pool_class(max_workers=workers) as pool:
        if one_at_a_time:
            for task in tasks:
                submitted = now_us()
                record(pool.submit(action, task).result(), submitted)
        else:
            kwargs = {"chunksize": chunksize} if pool_class is concurrent.futures.ProcessPoolExecutor else {}
            for result in pool.map(action, tasks, **kwargs):
                record(result, None)
        if pool_class is concurrent.futures.ProcessPoolExecutor:
            children_hwm = pool_children_hwm(pool)
    return children_hwm


async def run_async(tasks, one_at_a_time, record):
    if one_at_a_time:
        for task in tasks:
            submitted = now_us()
            record(await asyncio.get_running_loop().create_task(action_async(task)), submitted)
        return
    # The seed: create every task, then wait for all of them.
    for result in await asyncio.gather(*(action_async(t) for t in tasks)):
        # The result is in the caller's hands as soon as the task finishes.
        record(result, None, result[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", required=True,
                        choices=["sequential", "process", "thread", "asyncio", "uvloop"])
    parser.add_argument("--kind", default="sleep", choices=["sleep", "echo", "cpu", "http", "mixed"])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--arg", type=int, default=1000, help="sleep ms or cpu units")
    parser.add_argument("--cpu-units", type=int, default=20000, help="mixed: cpu units")
    parser.add_argument("--text", default="x", help="echo payload or http URL")
    parser.add_argument("--workers", type=int, default=0,
                        help="pool size; 0: the pool's own default, as the seed")
    parser.add_argument("--chunksize", type=int, default=1)
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="submit the next task only when the last one's result is back")
    args = parser.parse_args()

    if args.kind == "mixed":
        tasks = [("sleep", args.arg, "") if i % 2 == 0 else ("cpu", args.cpu_units, "")
                 for i in range(args.tasks)]
    else:
        tasks = [(args.kind, args.arg, args.text)] * args.tasks

    out = {"method": args.method, "tasks": args.tasks, "ok": 0, "wall_s": 0.0,
           "t0_us": 0, "times_us": [], "usage": {}, "executors": [], "error": ""}
    workers = args.workers or None
    if args.method == "sequential":
        out["slots"] = 1
    elif args.method == "process":
        out["slots"] = workers or os.cpu_count() or 1
    elif args.method == "thread":
        out["slots"] = workers or min(32, (os.cpu_count() or 1) + 4)
    else:
        out["slots"] = args.tasks
    if args.method == "uvloop":
        try:
            import uvloop
        except ImportError:
            out["error"] = "uvloop is not installed (Debian: python3-uvloop)"
            print(json.dumps(out))
            return 0

    times = [None] * len(tasks)
    executors = set()
    ok = 0
    next_index = 0
    t0_us = 0

    def record(result, submitted, received=None):
        """Keeps [started, finished, received, submitted] of the next task.

        Latency is from submission (the job's start, or this task's own
        submission one at a time) to the result in the caller's hands.
        """
        nonlocal ok, next_index
        started, finished, task_ok, who = result
        times[next_index] = [started, finished,
                             received if received is not None else now_us(),
                             submitted if submitted is not None else t0_us]
        next_index += 1
        ok += 1 if task_ok else 0
        executors.add(who)

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    baseline_rss = status_kb("/proc/self/status", "VmRSS") * 1024
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_hwm = 0
    t0_us = now_us()
    t0 = time.perf_counter()
    try:
        if args.method == "sequential":
            for task in tasks:
                submitted = now_us() if args.one_at_a_time else None
                record(action(task), submitted)
        elif args.method in ("process", "thread"):
            pool_class = (concurrent.futures.ProcessPoolExecutor if args.method == "process"
                          else concurrent.futures.ThreadPoolExecutor)
            children_hwm = run_pool(pool_class, tasks, workers, args.chunksize,
                                    args.one_at_a_time, record)
        elif args.method == "asyncio":
            asyncio.run(run_async(tasks, args.one_at_a_time, record))
        else:
            uvloop.install()
            asyncio.run(run_async(tasks, args.one_at_a_time, record))
    except Exception as error:  # Reported as the row's note.
        out["error"] = f"{type(error).__name__}: {error}"
    wall = time.perf_counter() - t0
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)

    out["ok"] = ok
    out["wall_s"] = wall
    out["t0_us"] = t0_us
    out["times_us"] = [t for t in times if t is not None]
    out["executors"] = sorted(executors)
    out["usage"] = {
        "user_s": (self_after.ru_utime - self_before.ru_utime)
        + (children_after.ru_utime - children_before.ru_utime),
        "sys_s": (self_after.ru_stime - self_before.ru_stime)
        + (children_after.ru_stime - children_before.ru_stime),
        "voluntary_cs": (self_after.ru_nvcsw - self_before.ru_nvcsw)
        + (children_after.ru_nvcsw - children_before.ru_nvcsw),
        "involuntary_cs": (self_after.ru_nivcsw - self_before.ru_nivcsw)
        + (children_after.ru_nivcsw - children_before.ru_nivcsw),
        "peak_rss_bytes": status_kb("/proc/self/status", "VmHWM") * 1024 + children_hwm,
        "baseline_rss_bytes": baseline_rss,
    }
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
