"""Reward classifier: success from camera frames, for HIL-SERL fine-tuning without a privileged success signal.

labels.py (record labelled episodes, or apply a person's success marks; LeRobot's next.reward / next.done),
classifier.py (the CNN and its checkpoint), train.py (episode split, training, P/R/F1), wrapper.py
(ClassifierReward: reward and termination from the classifier), command.py (`tidyarm train-reward`).
"""
