"""Frozen run configuration: the option table (flags, KUBESWARM_*, --config), parsers, checks."""
