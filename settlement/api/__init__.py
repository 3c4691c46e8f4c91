"""The HTTP API. Routers only wire domain services to HTTP: they parse, call a
service inside the request's unit of work, and shape the answer."""
