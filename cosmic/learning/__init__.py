"""Learning: the models, their inputs, training, tuning and the CPU/distribution settings."""
