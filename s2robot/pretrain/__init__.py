"""MAE pre-training of our own MVP-style encoders on robot frames."""
