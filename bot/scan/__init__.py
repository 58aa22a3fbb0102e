"""The scan stage: find every image reference in a tree, with its exact position."""
