"""A pymesos (0.3.15) v1 HTTP scheduler against the Mesos master: it finds the leader through
ZooKeeper, registers, takes an offer, launches a shell-command task, sees TASK_RUNNING, reads the
cluster through pymesos' v1 operator driver, kills the task, sees TASK_KILLED, and tears down.

Usage: python pymesos_framework.py ZK_URL MASTER_URL
  ZK_URL      zk://127.0.0.1:port,.../mesos, as a framework is given it
  MASTER_URL  http://127.0.0.1:port of the leading master, to check what it reports
"""

import getpass
import json
import queue
import sys
import time
import traceback
import urllib.request

from addict import Dict
from pymesos import MesosOperatorMasterDriver, MesosSchedulerDriver, Scheduler

from clientlib import WAIT_SECONDS, Wrong, check, run, step, wait_for

TASK_ID = "pymesos-sleeper"
FRAMEWORK_NAME = "pymesos-conformance"

events = queue.Queue()


def scalar(offer, name):
    return sum(r.scalar.value for r in offer.resources if r.name == name and r.type == "SCALAR")


class Sleeper(Scheduler):
    """Launches one task on the first offer big enough and declines every other offer."""

    def __init__(self):
        self.launched = False

    def registered(self, driver, framework_id, master_info):
        events.put(("registered", framework_id.value, dict(master_info)))

    def reregistered(self, driver, master_info):
        events.put(("reregistered", None, dict(master_info)))

    def resourceOffers(self, driver, offers):
        try:
            for offer in offers:
                events.put(("offer", offer.id.value, offer.agent_id.value))
                if self.launched or scalar(offer, "cpus") < 0.1 or scalar(offer, "mem") < 32:
                    driver.declineOffer(offer.id)
                    continue
                task = Dict()
                task.task_id.value = TASK_ID
                task.agent_id.value = offer.agent_id.value
                task.name = "sleeper"
                task.command.value = "echo started; exec sleep 100000"
                task.command.shell = True
                task.resources = [
                    dict(name="cpus", type="SCALAR", scalar=dict(value=0.1)),
                    dict(name="mem", type="SCALAR", scalar=dict(value=32)),
                ]
                driver.launchTasks(offer.id, [task])
                self.launched = True
                events.put(("launched", offer.agent_id.value, None))
        except Exception:
            events.put(("exception", traceback.format_exc(), None))

    def statusUpdate(self, driver, update):
        events.put(("update", update.task_id.value, dict(update)))

    def error(self, driver, message):
        events.put(("error", message, None))


def next_event(what, wanted):
    """Takes events until `wanted(event)` is true; fails on an error event or after the wait."""
    deadline = time.monotonic() + WAIT_SECONDS
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Wrong(f"timed out after {WAIT_SECONDS}s waiting for {what}; events seen: {seen}")
        try:
            event = events.get(timeout=min(left, 1.0))
        except queue.Empty:
            continue
        if event[0] in ("error", "exception"):
            raise Wrong(f"while waiting for {what} the scheduler got {event[0]}: {event[1]}")
        seen.append(event[:2] if event[0] != "update" else (event[1], event[2].get("state")))
        if wanted(event):
            return event


def master_json(master, path):
    with urllib.request.urlopen(f"{master}{path}", timeout=10) as response:
        return json.load(response)


def check_operator_api(master, framework_id, agent_id):
    """The v1 operator API (pymesos' operator driver POSTs to /api/v1/operator, which Mesos serves
    as /api/v1) while the task runs: each answer is {"type": T, "<t>": {...}} in JSON."""
    operator = MesosOperatorMasterDriver(master.split("://", 1)[-1])

    def call(name, method, *args):
        answer = method(*args)
        check(answer.get("type") == name, f"operator {name}: answer type {answer.get('type')!r}: {answer}")
        body = answer.get(name.lower())
        check(isinstance(body, dict), f"operator {name}: no `{name.lower()}` object in {answer}")
        return body

    health = call("GET_HEALTH", operator.getHealth)
    check(health.get("healthy") is True, f"GET_HEALTH: {health}")
    version = call("GET_VERSION", operator.getVersion)
    check(str(version.get("version_info", {}).get("version", "")).startswith("1."), f"GET_VERSION: {version}")
    flags = {f.get("name"): f.get("value") for f in call("GET_FLAGS", operator.getFlags).get("flags", [])}
    port = master.rsplit(":", 1)[1]
    check(flags.get("port") == port, f"GET_FLAGS: port flag {flags.get('port')!r}, expected {port}")
    info = call("GET_MASTER", operator.getMaster).get("master_info", {})
    check(str(info.get("port")) == port and info.get("id"), f"GET_MASTER: master_info {info}")
    agents = call("GET_AGENTS", operator.getAgents).get("agents", [])
    check(
        any(a.get("agent_info", {}).get("id", {}).get("value") == agent_id and a.get("active") for a in agents),
        f"GET_AGENTS: no active agent {agent_id} in {agents}",
    )
    frameworks = call("GET_FRAMEWORKS", operator.getFrameworks).get("frameworks", [])
    ours = [f for f in frameworks if f.get("framework_info", {}).get("id", {}).get("value") == framework_id]
    check(len(ours) == 1 and ours[0]["framework_info"].get("name") == FRAMEWORK_NAME, f"GET_FRAMEWORKS: {frameworks}")
    check(ours[0].get("active") is True, f"GET_FRAMEWORKS: framework {framework_id} not active: {ours[0]}")
    tasks = call("GET_TASKS", operator.getTasks).get("tasks", [])
    states = {t.get("task_id", {}).get("value"): t.get("state") for t in tasks}
    check(states.get(TASK_ID) == "TASK_RUNNING", f"GET_TASKS: tasks {states}, expected {TASK_ID} TASK_RUNNING")
    state = call("GET_STATE", operator.getState)
    states = {t.get("task_id", {}).get("value"): t.get("state") for t in state.get("get_tasks", {}).get("tasks", [])}
    check(states.get(TASK_ID) == "TASK_RUNNING", f"GET_STATE: get_tasks {states}, expected {TASK_ID} TASK_RUNNING")


def main():
    zk_url, master = sys.argv[1], sys.argv[2].rstrip("/")
    framework = Dict()
    # Tasks run as this user; the agents here run as the same one.
    framework.user = getpass.getuser()
    framework.name = FRAMEWORK_NAME
    framework.hostname = "127.0.0.1"
    driver = MesosSchedulerDriver(Sleeper(), framework, zk_url, use_addict=True)

    step("SUBSCRIBE through the leader found in ZooKeeper")
    driver.start()
    try:
        _, framework_id, master_info = next_event("registered()", lambda e: e[0] == "registered")
        check(framework_id, "registered() without a framework id")
        check(master_info.get("port"), f"registered() with master_info {master_info}: no port")

        step("offers, then LAUNCH of a shell command")
        _, agent_id, _ = next_event("an offer accepted with a LAUNCH", lambda e: e[0] == "launched")
        _, _, status = next_event(
            f"TASK_RUNNING for {TASK_ID}",
            lambda e: e[0] == "update" and e[1] == TASK_ID and e[2].get("state") != "TASK_STARTING"
            and e[2].get("state") != "TASK_STAGING",
        )
        check(status["state"] == "TASK_RUNNING", f"{TASK_ID} went to {status['state']}: {status.get('message')}")
        check(status["agent_id"]["value"] == agent_id, f"TASK_RUNNING from agent {status['agent_id']}, launched on {agent_id}")

        state = master_json(master, "/master/state")
        ours = [f for f in state["frameworks"] if f["id"] == framework_id]
        check(len(ours) == 1, f"/master/state lists no framework {framework_id}")
        check(ours[0]["name"] == FRAMEWORK_NAME, f"/master/state names the framework {ours[0]['name']!r}")
        check("pid" not in ours[0], f"/master/state gives the HTTP framework a pid {ours[0].get('pid')!r}; Mesos omits it")
        tasks = {t["id"]: t["state"] for t in ours[0]["tasks"]}
        check(tasks.get(TASK_ID) == "TASK_RUNNING", f"/master/state tasks of the framework: {tasks}")

        step("operator API: GET_HEALTH, GET_VERSION, GET_FLAGS, GET_MASTER, GET_AGENTS, GET_FRAMEWORKS, GET_TASKS, GET_STATE")
        check_operator_api(master, framework_id, agent_id)

        step("KILL, then TASK_KILLED")
        driver.killTask(Dict(value=TASK_ID))
        _, _, status = next_event(
            f"a terminal update for {TASK_ID} after KILL",
            lambda e: e[0] == "update" and e[1] == TASK_ID and e[2].get("state") not in ("TASK_RUNNING", "TASK_KILLING"),
        )
        check(status["state"] == "TASK_KILLED", f"after KILL {TASK_ID} went to {status['state']}, expected TASK_KILLED")
    finally:
        step("TEARDOWN")
        driver.stop()
        driver.join()

    def torn_down():
        state = master_json(master, "/master/state")
        active = [f["id"] for f in state["frameworks"]]
        completed = [f["id"] for f in state.get("completed_frameworks", [])]
        return framework_id not in active and framework_id in completed

    wait_for(f"framework {framework_id} in completed_frameworks after TEARDOWN", torn_down)


if __name__ == "__main__":
    try:
        run(main)
    except KeyboardInterrupt:
        # pymesos interrupts the main thread when its own thread dies, keeping the cause here.
        import pymesos.process

        info = getattr(pymesos.process, "_exc_info", None)
        print("FAILED: the pymesos driver thread died:", file=sys.stderr)
        if info:
            traceback.print_exception(*info)
        sys.exit(1)
