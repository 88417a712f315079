"""Authentication (users, passwords, JWT, refresh tokens, API keys, login rate limit)
and authorization (roles, scopes, family consent) for the API and dashboard."""
