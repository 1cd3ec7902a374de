"""The FastAPI service, auth, and the web UI (storefront + admin)."""
