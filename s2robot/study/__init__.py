"""The scaling study: plan a grid of training runs, run it resumably, report success against cost."""
