"""Helpers shared by the end-to-end tests and the fault suite (tests/chaos).

Both drive the worker as a black box: they produce records, run `creator-scores
worker` processes, read topics back, follow the group's committed offsets and
dump Redis. Keeping those helpers here, importable, means the fault suite's
runner (`python -m tests.chaos`) and pytest share one implementation.
"""
