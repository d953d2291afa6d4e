"""User commands: cosmic-predict, cosmic-score, cosmic-verify, cosmic-reproduce, cosmic-check-params."""
