"""TextVibCLIP: vibration windows and their text descriptions in one space, trained domain after domain.

data/synth/text -> model/losses/prototypes/procrustes/replay -> engine (the loop) -> train (Ray Train)
-> report/evaluate/ablation. See docs/textvib.md.
"""
