"""`kubeswarm demo`: a demo target under gunicorn and a local autoscaler running the HPA model."""
