"""driftwire runtime, one subpackage per concern (each imports only from those before it):

``config`` the typed settings and their loading; ``telemetry`` logs, metrics, health, progress;
``edge`` decoding events, reading logs, encoding and rendering alerts; ``state`` the store
contract, its keys, MemoryStore and RedisStore; ``engine`` the one engine and its constructor;
``kafka`` clients, the shard merge, publishers; ``replay`` logs through the engine; ``live`` the
long-running consumer; ``report`` the HTML report; ``cli`` the ``driftwire`` command.
``tests/test_imports.py`` holds this order.
"""

import os

# One BLAS thread per process, unless the environment says otherwise (set before numpy loads its
# BLAS: the runtime is imported first by every entry point). The runtime scales out by processes,
# a consumer per shard, and the detectors' linear algebra is small (the multivariate detector's
# PCA: tens to a few hundred dimensions), where waking a BLAS thread pool costs more than it saves:
# eigh of a 35 x 35 matrix took 0.2 ms on one thread and 15-40 ms with OpenBLAS's two threads on a
# busy 2-core machine; a 200 x 500 by 500 x 70 product 0.3 ms against 5-44 ms.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
