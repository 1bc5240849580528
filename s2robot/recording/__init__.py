"""Recording demonstrations and rollouts from a robot adapter into demonstration stores."""
