"""Cluster test tier: a real control plane (or a real cluster) and its checks."""
