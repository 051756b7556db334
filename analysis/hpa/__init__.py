"""The HPA model: the autoscaling/v2 replica calculation and the controller state between syncs."""
