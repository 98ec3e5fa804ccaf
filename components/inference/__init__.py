"""Use an exported SavedModel on files: translate, evaluate, score, generate.

Everything here works from the export alone (the contract users ship), never the training config.
"""
