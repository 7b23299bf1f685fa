#!/usr/bin/python3
"""The seed's own function on the farm.

    python3 worker/python/seed_worker.py --coordinator=127.0.0.1:50051 \
        --mode=thread --slots=3 --id=py-1
    qfarm map action:1 action:3 action:5      # 101, 103, 105

`action` is the seed's, unchanged: it prints the name of what runs it (here
a thread of the pool, ThreadPoolExecutor-0_0, ...), sleeps `num` seconds
and returns num + 100.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qfarm_worker  # pylint: disable=wrong-import-position


def action(num):
    print(threading.current_thread().name, flush=True)
    time.sleep(num)
    return num + 100


if __name__ == "__main__":
    worker = qfarm_worker.Worker()
    worker.register("action", action)
    sys.exit(worker.main())
