"""The pure scoring model: event validation, rolling per-creator state and scores.

Standard library only: no clock, no I/O, no third-party imports.
"""
