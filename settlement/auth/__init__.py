"""API keys: hashed at rest, with scopes."""
