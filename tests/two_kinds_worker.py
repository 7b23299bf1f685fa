#!/usr/bin/python3
"""A Python worker of two kinds, registered out of name order, for
kinds_test: `zeta` upper-cases its text, `alpha` reverses it. The
coordinator names an assigned task's kind by its place in the hello's
sorted list (alpha 0, zeta 1), so a mix-up shows in the values."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "worker", "python"))
import qfarm_worker  # pylint: disable=wrong-import-position

if __name__ == "__main__":
    worker = qfarm_worker.Worker()
    worker.register("zeta", lambda text: text.upper(), arg=str)
    worker.register("alpha", lambda text: text[::-1], arg=str)
    sys.exit(worker.main())
