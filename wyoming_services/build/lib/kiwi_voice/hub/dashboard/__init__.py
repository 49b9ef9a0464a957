"""The browser dashboard: static ES modules the hub serves, no build step (docs/dashboard.md)."""

from .routes import add_dashboard_routes

__all__ = ["add_dashboard_routes"]
