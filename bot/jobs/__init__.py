"""The job engine: start and cancel, the scheduler that follows upstream jobs, and delivery to Discord."""
