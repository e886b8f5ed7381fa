"""Tools for developers and demos, kept apart from the worker's path.

The simulator, the local stack (Kafka and Redis without Docker), replay of
recorded events, the terminal dashboard and the demo that runs them together
live here so that a reader of the worker never opens them: the worker never
imports this package, while the command line, the tests and the benchmarks do.
"""
