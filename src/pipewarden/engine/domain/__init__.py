"""Pure decisions of the release engine: no temporalio, no SQLAlchemy, no I/O.

Modules here import only the standard library, `pipewarden.model` and each other (a test in
tests/engine/test_domain_imports.py keeps it so), so that Temporal workflows can import them
inside the sandbox and every decision can be tested without a server.
"""
