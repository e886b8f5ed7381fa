"""The fault suite: the worker under crashes, rebalances, outages and hostile input.

`python -m tests.chaos` (`make chaos`) starts a Kafka and a Redis of its own on
free ports in a temp folder, generates a fixed event set (deterministic: a few
hundred creators, tens of thousands of posts, tags and orders, some keyed by
something else than the creator, over 8 partitions), runs it through one
undisturbed worker as the reference, then runs every scenario on the same events
with a fresh app id and Redis prefix and compares the outcome with the
reference: creators different, events lost, events counted twice, dead letters,
and seconds until the workers were serving again. It prints a table, writes it as
JSON and can write docs/reliability.md. Workers are `creator-scores worker`
processes running this checkout's code; everything is observed from outside
(processes, topics, Redis), so the suite does not change when the pipeline does.

`tests/chaos/test_chaos.py` runs a small part (kill -9 and hostile records) in
`make test`, against the stack `make test` started.
"""
