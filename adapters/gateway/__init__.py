"""The OpenAI-compatible gateway (`freegin-ai serve`): an ASGI app in front of the router.

Modules: `wire` (OpenAI's request and response shapes, errors), `routing` (the `model` field
and router failures), `security` (the API key, where to listen), `metrics` (Prometheus),
`app` (the ASGI application, `Gateway`), `server` (uvicorn, signals). Nothing is imported
here, so `serve` can refuse bad options before loading the router.
"""
