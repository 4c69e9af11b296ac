"""The /v1 routes, one module per resource; each module has a `router` and `install` adds them all."""

from fastapi import FastAPI

from kinko.api.routes import keys, kubernetes, policies, secrets, sys, tokens


def install(app: FastAPI) -> None:
    for module in (secrets, sys, tokens, policies, kubernetes, keys):
        app.include_router(module.router)
