"""A qfarm worker in Python: registered functions run as task kinds.

It speaks the WorkerLink contract of proto/qfarm/v1/worker_link.proto, as
qfarm-worker does: a hello listing its kinds (an assigned task names its
kind by its index in that list, Task.kind_index), results in batches carrying
the credits they free, heartbeats when idle, cancellations, reconnects with
jittered backoff, and a drain on SIGTERM (no more credits; running tasks
finish within --drain-grace; exit 0).

    import qfarm_worker

    def action(num):
        ...
        return num + 100

    worker = qfarm_worker.Worker()
    worker.register("action", action)        # blocking: a thread (or the loop's pool)
    worker.register("fetch", fetch_async)    # `async def`: the event loop
    sys.exit(worker.main())                  # qfarm-worker's flags

A task's argument (`action:3`, the spec's ARG, as text) reaches the function
converted by `arg` (default: a Python literal when it reads as one, `3` ->
3, `1.5` -> 1.5, else the text itself); the value is str() of what it
returns. An exception fails the task with "Type: message".

Modes: --mode=thread runs functions on a ThreadPoolExecutor of --slots
threads (the result's executor is the thread's name,
ThreadPoolExecutor-0_0, ...); --mode=async runs coroutine functions on an
asyncio loop (uvloop when installed), up to --slots at once, and blocking
ones on the loop's thread pool.

The gRPC stubs are generated from proto/ when the worker starts (with
grpc_tools, Debian's python3-grpc-tools) into a temporary directory.
Needs Debian's python3-grpcio, python3-protobuf and python3-grpc-tools
(/usr/bin/python3).
"""

import argparse
import ast
import asyncio
import atexit
import concurrent.futures
import importlib
import inspect
import os
import queue
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

_PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "..", "..", "proto")


def load_stubs(proto_dir=None):
    """Generates the Python stubs of proto/ and imports them.

    Returns (task_pb2, worker_link_pb2, worker_link_pb2_grpc).
    """
    proto_dir = os.path.abspath(proto_dir or os.environ.get(
        "QFARM_PROTO_DIR", _PROTO_DIR))
    from grpc_tools import protoc  # pylint: disable=import-outside-toplevel
    out = tempfile.mkdtemp(prefix="qfarm-py-stubs-")
    atexit.register(shutil.rmtree, out, True)
    protos = ["qfarm/v1/task.proto", "qfarm/v1/worker_link.proto"]
    code = protoc.main(["grpc_tools.protoc", "-I" + proto_dir,
                        "--python_out=" + out, "--grpc_python_out=" + out] +
                       [os.path.join(proto_dir, p) for p in protos])
    if code != 0:
        raise RuntimeError(f"protoc failed on {proto_dir} (exit {code})")
    sys.path.insert(0, out)
    return (importlib.import_module("qfarm.v1.task_pb2"),
            importlib.import_module("qfarm.v1.worker_link_pb2"),
            importlib.import_module("qfarm.v1.worker_link_pb2_grpc"))


def literal_arg(text):
    """`3` -> 3, `1.5` -> 1.5, `'x'` -> 'x'; other text as it is."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _now_us():
    return time.time_ns() // 1000


def _error_text(exc):
    return f"{type(exc).__name__}: {exc}"


class _Kind:
    def __init__(self, name, fn, arg):
        self.name = name
        self.fn = fn
        self.arg = arg
        self.is_coroutine = inspect.iscoroutinefunction(fn)


class Worker:
    """Registered kinds and the loop that serves them. One per process."""

    def __init__(self):
        self._kinds = {}

    def register(self, name, fn, arg=literal_arg):
        """Offers kind `name`, run by `fn(arg(text))`; returns fn."""
        self._kinds[name] = _Kind(name, fn, arg)
        return fn

    def main(self, argv=None):
        """Parses qfarm-worker's flags and serves until SIGTERM drains it.

        Returns the exit code: 0 after a drain, 2 for a bad command line.
        """
        parser = argparse.ArgumentParser(
            description="A qfarm worker of Python functions.")
        parser.add_argument("--coordinator", default=os.environ.get(
            "QFARM_COORDINATOR") or "127.0.0.1:50051")
        parser.add_argument("--mode", default="thread",
                            choices=["thread", "async"])
        parser.add_argument("--slots", type=int, default=0,
                            help="tasks at once (default: 10 in thread "
                            "mode, 1000 in async mode)")
        parser.add_argument("--id", default="")
        parser.add_argument("--drain-grace", type=float, default=10.0,
                            help="seconds running tasks get on SIGTERM")
        parser.add_argument("--token-file", default="")
        parser.add_argument("--tls-ca", default="")
        parser.add_argument("--proto-dir", default=None)
        args = parser.parse_args(argv)
        if not self._kinds:
            print("qfarm worker: no kinds registered", file=sys.stderr)
            return 2
        slots = args.slots or (10 if args.mode == "thread" else 1000)
        if not 1 <= slots <= 1_000_000:
            print(f"--slots={slots} must be within 1..1000000",
                  file=sys.stderr)
            return 2
        stubs = load_stubs(args.proto_dir)
        link = _Link(self._kinds, args, slots, stubs)
        return link.run()


class _Link:
    """The stream to the coordinator and the executor behind it."""

    def __init__(self, kinds, args, slots, stubs):
        self._kinds = kinds
        # The hello's order: the kind table of the tasks it is sent.
        self._names = sorted(kinds)
        self._args = args
        self._slots = slots
        self._task_pb2, self._pb2, self._pb2_grpc = stubs
        self._draining = threading.Event()
        self._mu = threading.Lock()
        # (job, index, attempt) -> job of the tasks running or waiting.
        self._in_flight = set()
        self._cancelled_jobs = set()
        self._async_tasks = {}  # key -> asyncio.Task (async mode)
        self._outbox = None
        self._generation = 0
        self._heartbeat_s = 2.5
        if args.mode == "thread":
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=slots)
            self._loop = None
        else:
            self._pool = None
            self._loop = self._start_loop()

    # -- executors ------------------------------------------------------

    def _start_loop(self):
        try:
            import uvloop  # pylint: disable=import-outside-toplevel
            loop = uvloop.new_event_loop()
            self._loop_name = "uvloop"
        except ImportError:
            loop = asyncio.new_event_loop()
            self._loop_name = "asyncio"
        threading.Thread(target=loop.run_forever, name=self._loop_name,
                         daemon=True).start()
        return loop

    def _submit(self, assignment, generation):
        key = (assignment.job_id, assignment.index, assignment.attempt)
        with self._mu:
            self._in_flight.add(key)
        if self._pool is not None:
            self._pool.submit(self._run_blocking, assignment, generation)
        else:
            asyncio.run_coroutine_threadsafe(
                self._run_async(assignment, generation), self._loop)

    def _kind_of(self, task):
        """The task's kind: by name, or by its index in the hello's kinds
        (Task.kind_index), the coordinator's way."""
        names = self._names
        if task.kind:
            kind = self._kinds.get(task.kind)
            named = f'"{task.kind}"'
        else:
            index = task.kind_index
            kind = self._kinds[names[index]] if index < len(names) else None
            named = f"of index {index}"
        if kind is None:
            offered = ", ".join(names)
            raise LookupError(
                f"kind {named} is not offered here (offered: {offered})")
        return kind

    def _run_blocking(self, assignment, generation):
        executor = threading.current_thread().name
        started = _now_us()
        if assignment.job_id in self._cancelled_jobs:
            self._finish(assignment, generation, executor, 0,
                         cancelled="job cancelled")
            return
        try:
            kind = self._kind_of(assignment.task)
            if kind.is_coroutine:
                value = asyncio.run(kind.fn(kind.arg(assignment.task.text)))
            else:
                value = kind.fn(kind.arg(assignment.task.text))
            self._finish(assignment, generation, executor, started,
                         value=value)
        except Exception as exc:  # pylint: disable=broad-except
            self._finish(assignment, generation, executor, started,
                         error=_error_text(exc))

    async def _run_async(self, assignment, generation):
        key = (assignment.job_id, assignment.index, assignment.attempt)
        started = _now_us()
        if assignment.job_id in self._cancelled_jobs:
            self._finish(assignment, generation, self._loop_name, 0,
                         cancelled="job cancelled")
            return
        self._async_tasks[key] = asyncio.current_task()
        executor = self._loop_name
        try:
            kind = self._kind_of(assignment.task)
            arg = kind.arg(assignment.task.text)
            if kind.is_coroutine:
                value = await kind.fn(arg)
            else:
                value = await asyncio.get_running_loop().run_in_executor(
                    None, kind.fn, arg)
            self._finish(assignment, generation, executor, started,
                         value=value)
        except asyncio.CancelledError:
            self._finish(assignment, generation, executor, started,
                         cancelled="job cancelled")
        except Exception as exc:  # pylint: disable=broad-except
            self._finish(assignment, generation, executor, started,
                         error=_error_text(exc))
        finally:
            self._async_tasks.pop(key, None)

    def _cancel(self, job_ids):
        with self._mu:
            self._cancelled_jobs.update(job_ids)
        if self._loop is not None:
            def cancel_running():
                for key, task in list(self._async_tasks.items()):
                    if key[0] in job_ids:
                        task.cancel()
            self._loop.call_soon_threadsafe(cancel_running)

    def _finish(self, assignment, generation, executor, started_us,
                value=None, error=None, cancelled=None):
        pb = self._task_pb2
        result = pb.TaskResult(job_id=assignment.job_id,
                               index=assignment.index,
                               attempt=assignment.attempt,
                               worker=self._args.id, executor=executor,
                               started_us=started_us,
                               finished_us=_now_us())
        if cancelled is not None:
            result.state = pb.TASK_STATE_CANCELLED
            result.error = cancelled
        elif error is not None:
            result.state = pb.TASK_STATE_FAILED
            result.error = error
        else:
            result.state = pb.TASK_STATE_OK
            result.value = str(value)
        key = (assignment.job_id, assignment.index, assignment.attempt)
        with self._mu:
            self._in_flight.discard(key)
            outbox = self._outbox
            current = generation == self._generation
        # A result of an earlier connection is void: its task was handed
        # back when that connection ended. Its slot is free again either way.
        if outbox is not None:
            outbox.put(("result", result if current else None))

    # -- the stream -----------------------------------------------------

    def _messages(self, outbox, hello):
        """What the worker sends: the hello, then batches of results with
        the credits they free, heartbeats when idle. Ends when told."""
        yield hello
        while True:
            try:
                item = outbox.get(timeout=self._heartbeat_s)
            except queue.Empty:
                yield self._pb2.WorkerMessage(
                    heartbeat=self._pb2.Heartbeat())
                continue
            if item[0] == "end":
                return
            results, freed = [], 0
            while True:
                if item[0] == "end":
                    outbox.put(item)  # Ends the stream after this batch.
                    break
                freed += 1
                if item[1] is not None:
                    results.append(item[1])
                try:
                    item = outbox.get_nowait()
                except queue.Empty:
                    break
            credits = 0 if self._draining.is_set() else freed
            yield self._pb2.WorkerMessage(
                results=self._task_pb2.ResultBatch(results=results),
                credits=credits)

    def _channel(self):
        import grpc  # pylint: disable=import-outside-toplevel
        options = [("grpc.keepalive_time_ms", 10_000),
                   ("grpc.keepalive_timeout_ms", 10_000),
                   ("grpc.keepalive_permit_without_calls", 1),
                   ("grpc.http2.max_pings_without_data", 0)]
        if self._args.tls_ca:
            with open(self._args.tls_ca, "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            return grpc.secure_channel(self._args.coordinator, creds, options)
        return grpc.insecure_channel(self._args.coordinator, options)

    def _metadata(self):
        if not self._args.token_file:
            return None
        with open(self._args.token_file, encoding="utf-8") as f:
            return [("authorization", "Bearer " + f.read().strip())]

    def _connect_once(self):
        """One connection, until it ends. Returns True once drained."""
        outbox = queue.Queue()
        with self._mu:
            self._generation += 1
            self._outbox = outbox
            running = len(self._in_flight)
        hello = self._pb2.WorkerMessage(
            hello=self._pb2.WorkerHello(worker_id=self._args.id,
                                        mode=self._args.mode,
                                        slots=self._slots,
                                        kinds=self._names),
            credits=max(0, self._slots - running))
        channel = self._channel()
        stub = self._pb2_grpc.WorkerLinkStub(channel)
        stream = stub.Connect(self._messages(outbox, hello),
                              metadata=self._metadata())
        self._stream = stream
        generation = self._generation
        try:
            for message in stream:
                body = message.WhichOneof("body")
                if body == "welcome":
                    if message.welcome.worker_id:
                        self._args.id = message.welcome.worker_id
                    interval = message.welcome.heartbeat_interval_ms
                    if interval > 0:
                        self._heartbeat_s = interval / 1000
                    print(f"qfarm worker {self._args.id} connected to "
                          f"{self._args.coordinator}", file=sys.stderr,
                          flush=True)
                elif body == "tasks":
                    for assignment in message.tasks.assignments:
                        self._submit(assignment, generation)
                elif body == "cancel":
                    self._cancel(set(message.cancel.job_ids))
            return self._draining.is_set()
        except Exception as exc:  # pylint: disable=broad-except
            if self._draining.is_set():
                return True
            print(f"qfarm worker {self._args.id}: stream ended: "
                  f"{getattr(exc, 'details', lambda: exc)()}",
                  file=sys.stderr, flush=True)
            return False
        finally:
            with self._mu:
                self._outbox = None
            outbox.put(("end",))
            channel.close()

    def _drain(self):
        """On SIGTERM: no more credits; running tasks get --drain-grace,
        then the stream closes (tasks still running are handed back)."""
        self._draining.set()
        deadline = time.monotonic() + self._args.drain_grace
        while time.monotonic() < deadline:
            with self._mu:
                if not self._in_flight:
                    break
            time.sleep(0.01)
        with self._mu:
            outbox = self._outbox
        if outbox is not None:
            outbox.put(("end",))  # Half-closes after the last results.
        stream = getattr(self, "_stream", None)
        if stream is not None:
            # The coordinator ends the call once we half-close; bound it.
            threading.Timer(2.0, stream.cancel).start()

    def run(self):
        signal.signal(signal.SIGTERM,
                      lambda *_: threading.Thread(target=self._drain,
                                                  daemon=True).start())
        signal.signal(signal.SIGINT,
                      lambda *_: threading.Thread(target=self._drain,
                                                  daemon=True).start())
        backoff = 0.1
        while not self._draining.is_set():
            if self._connect_once():
                break
            if self._draining.is_set():
                break
            time.sleep(random.uniform(0, backoff))
            backoff = min(backoff * 2, 5.0)
        print(f"qfarm worker {self._args.id} drained", file=sys.stderr,
              flush=True)
        os._exit(0)  # Pool threads still running are abandoned.
