"""The release engine (engine.md): pure decisions in `domain/`, persistence in `store/`; the
Temporal workflows, activities, client, worker and server come in later steps (docs/engine-plan.md).
"""
