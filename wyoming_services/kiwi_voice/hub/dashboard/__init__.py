"""The browser dashboard: static ES modules served by the hub (no build step); see docs/dashboard.md."""

from .routes import add_dashboard_routes

__all__ = ["add_dashboard_routes"]
