"""The admin HTTP API: what a live-ops team uses (leaderboards, matches, connections, broadcast, health)."""
