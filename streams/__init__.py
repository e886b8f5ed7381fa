"""Infrastructure wiring for creator-scores: settings, Faust app, sinks, developer tools."""
