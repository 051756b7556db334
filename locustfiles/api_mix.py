"""A typical API mix: mostly reads, some writes, item URLs grouped under one name.

Grouping dynamic URLs with ``name=`` keeps the master's memory flat: Locust keeps statistics per
entry and per second, so one entry per item id would grow without bound over a long run.
"""

import random

from locust import FastHttpUser, between, task


class ApiUser(FastHttpUser):
    wait_time = between(0.5, 1.5)

    @task(6)
    def list_items(self) -> None:
        self.client.get("/api/items")

    @task(3)
    def get_item(self) -> None:
        self.client.get(f"/api/items/{random.randint(1, 10_000)}", name="/api/items/[id]")

    @task(1)
    def create_item(self) -> None:
        self.client.post("/api/items", json={"name": "kubeswarm", "size": random.randint(1, 9)})
