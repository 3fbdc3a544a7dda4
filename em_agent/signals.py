"""Signals the core sends for apps that build on it (which em_agent must not import)."""

from django.dispatch import Signal

# An agent redeemed its activation code; sent inside the activating transaction (receivers that
# start work should do so on commit). Keyword argument: agent.
agent_activated = Signal()
