"""Steady load on one cheap endpoint: the smallest useful test, and a check of the plumbing.

Each user sends one request per second (constant pacing), so the request rate is the user count
whatever the latency, and a fall in requests per second means the target could not keep up.
"""

from locust import FastHttpUser, constant_pacing, task


class HealthCheckUser(FastHttpUser):
    wait_time = constant_pacing(1.0)

    @task
    def index(self) -> None:
        self.client.get("/")
