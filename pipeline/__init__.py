"""driftwire runtime, one subpackage per concern (each imports only from those before it):

``config`` the typed settings and their loading; ``telemetry`` logs, metrics, health, progress;
``edge`` decoding events, reading logs, encoding and rendering alerts; ``state`` the store
contract, its keys, MemoryStore and RedisStore; ``engine`` the one engine and its constructor;
``kafka`` clients, the shard merge, publishers; ``replay`` logs through the engine; ``live`` the
long-running consumer; ``report`` the HTML report; ``cli`` the ``driftwire`` command.
``tests/test_imports.py`` holds this order.
"""

__version__ = "0.1.0"
