"""The read API (`creator-scores serve`): scores, leaderboards, search and live changes over
HTTP for partner tools and widgets, read from Redis only (docs/api.md).

Its own process beside the workers: it never touches Kafka or the state, so it can be
scaled, restarted and rate-limited without disturbing scoring.
"""
