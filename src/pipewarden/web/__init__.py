"""The web front: an ASGI app (Starlette) with the JSON API of server.md; `app.create_app(services)`
is what `pipewarden server` serves on `--listen`."""
