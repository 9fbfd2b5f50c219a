"""Activities: they observe and act (git, processes, the artifact store, the engine store).
`EngineActivities` (engine.py) holds every activity of issue 13's step 2 as methods, with its
clients injected; `worker.py` registers them."""
