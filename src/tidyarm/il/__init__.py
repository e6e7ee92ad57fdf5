"""Imitation learning from demonstrations: BC, ACT and Diffusion Policy over LeRobot features."""
