"""DAgger with the scripted expert: roll the trained policy out (``rollout``), label every state it
visited with the expert's action, add those episodes to the store and retrain, N rounds (``rounds``)."""
