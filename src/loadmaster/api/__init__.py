"""The HTTP API: a FastAPI app built per service by `create_app`, thin routers over the store
and the running scheduler service."""
