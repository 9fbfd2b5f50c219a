"""Temporal workflows: deterministic; they import the domain, the model's view and the contract
(activity names and dataclasses) only."""
