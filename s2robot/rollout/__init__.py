"""Running a trained checkpoint: the controller, env worker pools, evaluation with videos."""
