"""Preprocessing transforms (fit/transform, to_dict/from_dict) and the Pipeline."""
