"""The Hydra configuration tree, shipped as package data so an installed s2robot finds it."""
