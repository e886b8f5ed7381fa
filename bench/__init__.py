"""Benchmarks of the full pipeline against baselines run in the same script.

`python -m bench.run` preloads topics on the real local stack, runs the worker and
four baselines (a naive Faust app, a do-nothing Faust agent, a raw aiokafka loop and
Quix Streams) as subprocesses over identical input, and writes JSON results plus
`docs/benchmarks.md`. Speed claims are ratios between figures from one run, because
the machine's two shared cores are too noisy for absolute numbers to travel.
"""
