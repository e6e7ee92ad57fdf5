"""Reinforcement learning: replay storage (`replay`) and soft actor-critic with RLPD options (`sac`)."""
