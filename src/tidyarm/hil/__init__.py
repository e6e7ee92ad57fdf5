"""HIL-SERL: fine-tune a sim-trained pixel policy on a robot (learner, actor, transport, interventions)."""
