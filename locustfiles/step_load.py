"""Step load: four equal steps up to ``-u`` users, a hold, then a drop to a quarter.

It is the shape that shows autoscaling best: each step is a load change the HPA must answer, the
hold shows whether replicas settle, and the drop shows scale-down and its stabilization window.
The steps are fractions of ``-t`` (``use_common_options``), so one file serves a one-minute demo
and a one-hour soak alike:

    0%   25%  users/4, then users/2 at 15%, 3*users/4 at 30%, users at 45%
    45%  80%  hold at users
    80% 100%  users/4
"""

import math
import time

from locust import FastHttpUser, LoadTestShape, constant_pacing, task

# (start as a fraction of the run time, fraction of -u users)
STAGES = ((0.0, 0.25), (0.15, 0.5), (0.30, 0.75), (0.45, 1.0), (0.80, 0.25))


class WebUser(FastHttpUser):
    # Five requests per second per user whatever the latency: load is set by the user count.
    wait_time = constant_pacing(0.2)

    @task
    def page(self) -> None:
        self.client.get("/")


class StepLoadShape(LoadTestShape):
    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        run_time = float(getattr(options, "run_time", None) or 60)
        users = int(getattr(options, "num_users", None) or 20)
        spawn_rate = float(getattr(options, "spawn_rate", None) or users)
        elapsed = time.perf_counter() - self.start_time  # LoadTestShape.get_run_time
        if elapsed >= run_time:
            return None
        share = [share for start, share in STAGES if elapsed >= start * run_time][-1]
        return max(1, math.ceil(users * share)), spawn_rate
