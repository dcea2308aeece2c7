"""From what a member typed or clicked to a validated job: inline flags, options checked per model, the model to
use, and the ``JobSpec`` both commands and buttons hand to the job service."""
