"""API routers, one per domain; each is thin: check access, call a repository, shape."""
