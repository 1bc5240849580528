"""Behaviour-cloning policy heads on frozen S² features + proprioception."""
