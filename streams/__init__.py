"""Infrastructure wiring for creator-scores: settings, local stack, Faust app, sinks."""
