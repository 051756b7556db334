"""Sources the session samples each tick: Locust, local processes, the Kubernetes API."""
