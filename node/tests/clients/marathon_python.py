"""marathon-python (PyPI `marathon`, 0.13) through an app's whole life against one Marathon.

Usage: python marathon_python.py MARATHON_URL

Every step asserts what Marathon 1.x answers; the first wrong answer ends the script with a
message naming the call, what came back and what Marathon does.
"""

import collections
import collections.abc
import json
import sys
import threading

# marathon-python 0.13 still uses `collections.Iterable`, removed in Python 3.10; give it the
# alias instead of patching the package.
collections.Iterable = collections.abc.Iterable

from marathon import MarathonApp, MarathonClient  # noqa: E402
from marathon.exceptions import ConflictError, MarathonHttpError, NotFoundError  # noqa: E402
from marathon.models.events import EventFactory  # noqa: E402
from marathon.models.group import MarathonGroup  # noqa: E402
from marathon.models.queue import MarathonQueueItem  # noqa: E402

from clientlib import Wrong, check, run, step, wait_for  # noqa: E402

APP = "/pyclient/sleeper"
# The client puts the id into the URL as given: without the leading slash, as users write it.
APP_PATH = APP.lstrip("/")
GROUP = "/pyclient-group"
# Ids that contain endpoint names (Marathon routes by path segments, not by substrings).
GROUP_APP = GROUP + "/tasks-api"
STUCK = "/pyclient/versions-restart"


# Event types Marathon publishes on /v2/events around what this script does (its event bus doc).
EXPECTED_EVENTS = {
    "api_post_event",
    "status_update_event",
    "instance_changed_event",
    "deployment_info",
    "deployment_step_success",
    "deployment_success",
}


class EventLog:
    """Reads /v2/events through the client for the whole run and parses every event with the
    client's own event classes, which know each type's fields; keeps the first failure."""

    def __init__(self, url):
        self.client = MarathonClient([url], timeout=15)
        self.types = set()
        self.failure = None
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        factory = EventFactory()
        try:
            for data in self.client.event_stream(raw=True):
                event = json.loads(data)
                if "plan" in event:
                    # Marathon 1.10 writes a deployment event's plan as {id, steps, version}
                    # (DeploymentPlan in its RAML). marathon-python 0.13 still expects the
                    # original/target groups of older Marathons and cannot read a real 1.10
                    # plan, so the plan is checked here and the rest parsed by the client.
                    plan = event.pop("plan")
                    check(
                        isinstance(plan, dict) and set(plan) == {"id", "steps", "version"},
                        f"GET /v2/events: a {event.get('eventType')} plan has keys {sorted(plan)}; "
                        f"Marathon's are id, steps, version: {data.strip()}",
                    )
                if event.get("eventType") in ("deployment_info", "deployment_step_success", "deployment_step_failure"):
                    step_json = event.get("currentStep")
                    check(
                        isinstance(step_json, dict) and isinstance(step_json.get("actions"), list),
                        f"GET /v2/events: a {event['eventType']} without Marathon's currentStep {{actions: [...]}}: {data.strip()}",
                    )
                try:
                    event = factory.process(event)
                except Exception as error:
                    raise Wrong(f"GET /v2/events sent an event the client cannot parse ({error}): {data.strip()}")
                with self.lock:
                    self.types.add(event.event_type)
        except Exception as error:
            with self.lock:
                self.failure = f"{type(error).__name__}: {error}"

    def seen(self):
        with self.lock:
            check(self.failure is None, f"the event stream failed: {self.failure}")
            return set(self.types)


def sleeper(instances):
    return MarathonApp(cmd="sleep 100000", cpus=0.1, mem=16, instances=instances)


def running_tasks(client, app_path):
    """The app's tasks in TASK_RUNNING, parsed by the client (which rejects unknown fields)."""
    return [t for t in client.list_tasks(app_path) if t.state == "TASK_RUNNING"]


def await_running(client, app_path, n, what):
    """Waits until the app has exactly `n` tasks, all running; returns them."""

    def probe():
        tasks = client.list_tasks(app_path)
        running = [t for t in tasks if t.state == "TASK_RUNNING"]
        return running if len(tasks) == n and len(running) == n else None

    return wait_for(f"{n} running tasks of /{app_path} ({what})", probe)


def no_deployment_of(client, app_id):
    return not any(app_id in (d.affected_apps or []) for d in client.list_deployments())


def queue_item(client, app_id):
    """The queue entry of `app_id`, parsed by the client's own model, or None.

    `list_queue()` itself cannot be used: Marathon 1.9 added `role` to every queue entry
    (QueueObject in Marathon's RAML) and marathon-python 0.13's MarathonQueueItem rejects it, so
    that call fails against real Marathon 1.9+ too. Instead: the same request, a check that
    `role` is there as Marathon returns it, then the client's model for every other field.
    """
    items = client._do_request("GET", "/v2/queue").json()["queue"]
    for item in items:
        check("role" in item, f"GET /v2/queue: an entry lacks `role`, which Marathon 1.9+ returns: {item}")
    parsed = [MarathonQueueItem.from_json({k: v for k, v in item.items() if k != "role"}) for item in items]
    return next((q for q in parsed if q.app.id == app_id), None)


def check_deployment_result(result, call):
    check(
        isinstance(result, dict) and isinstance(result.get("deploymentId"), str) and isinstance(result.get("version"), str),
        f"{call} returned {result!r}; Marathon answers a deployment result "
        '{"deploymentId": "...", "version": "..."}',
    )


def main():
    url = sys.argv[1]
    client = MarathonClient([url], timeout=15)
    events = EventLog(url)

    step("ping / get_info / get_leader")
    pong = client.ping()
    check(pong.strip() == b"pong", f"ping (GET /ping) answered {pong!r}; Marathon answers pong")
    info = client.get_info()
    here = url.split("://", 1)[-1].rstrip("/")
    check(info.elected is True, f"get_info: elected {info.elected!r} from the leader")
    check(info.leader == here, f"get_info: leader {info.leader!r}, expected {here}")
    check(isinstance(info.framework_id, str) and info.framework_id, f"get_info: frameworkId {info.framework_id!r}")
    config = info.marathon_config
    check(config is not None, "get_info: no marathon_config")
    check(
        (config.local_port_min, config.local_port_max) == (10000, 20000),
        f"get_info: local_port_min/max {config.local_port_min!r}/{config.local_port_max!r}; Marathon's defaults are 10000/20000",
    )
    check(config.mesos_leader_ui_url, f"get_info: marathon_config.mesos_leader_ui_url is {config.mesos_leader_ui_url!r}")
    check(info.zookeeper_config is not None and info.zookeeper_config.zk, "get_info: no zookeeper_config.zk")
    check(
        info.http_config is not None and info.http_config.http_port == int(here.rsplit(":", 1)[1]),
        f"get_info: http_config {info.http_config and vars(info.http_config)}",
    )
    leader = client.get_leader()
    check(leader.get("leader") == here, f"get_leader (GET /v2/leader) answered {leader!r}")

    step("create_app")
    created = client.create_app(APP_PATH, sleeper(2))
    check(created is not False, "create_app: POST /v2/apps did not answer 201 Created")
    check(created.id == APP, f"create_app returned id {created.id!r}, expected {APP!r}")
    check(created.instances == 2, f"create_app returned instances {created.instances!r}, expected 2")
    check(created.cmd == "sleep 100000", f"create_app returned cmd {created.cmd!r}")
    first_version = created.version
    check(isinstance(first_version, str) and first_version, f"create_app returned version {first_version!r}")

    step("create_app again: 409 Conflict")
    try:
        client.create_app(APP_PATH, sleeper(2))
    except ConflictError as error:
        check(APP in error.error_message, f"duplicate create: the 409 message {error.error_message!r} should name {APP}")
    except MarathonHttpError as error:
        check(False, f"duplicate create: got {error}; Marathon answers 409 'An app with id [{APP}] already exists.'")
    else:
        check(False, "duplicate create: POST /v2/apps with an existing id succeeded; Marathon answers 409")

    step("list_apps / get_app")
    apps = client.list_apps()
    check(APP in [a.id for a in apps], f"list_apps: {APP} missing from {[a.id for a in apps]}")
    app = client.get_app(APP_PATH)
    check(app.id == APP and app.instances == 2, f"get_app: id {app.id!r}, instances {app.instances!r}")

    step("list_tasks: two running")
    tasks = await_running(client, APP_PATH, 2, "after create")
    for task in tasks:
        check(task.app_id == APP, f"list_tasks: task {task.id} has appId {task.app_id!r}, expected {APP}")
        check(task.slave_id and task.host, f"list_tasks: task {task.id} lacks slaveId/host: {vars(task)}")
    all_tasks = client.list_tasks()
    check(
        {t.id for t in tasks} <= {t.id for t in all_tasks},
        "list_tasks() (GET /v2/tasks) lacks the app's tasks",
    )

    step("get_app: Marathon's normalized definition, counts and tasks")
    app = client.get_app(APP_PATH)
    check(app.backoff_seconds == 1 and app.backoff_factor == 1.15,
          f"get_app: backoffSeconds {app.backoff_seconds!r}, backoffFactor {app.backoff_factor!r}; Marathon's defaults are 1 and 1.15")
    # The default fell from 3600 to 300 in Marathon 1.8; either is Marathon 1.x.
    check(
        app.max_launch_delay_seconds in (300, 3600),
        f"get_app: maxLaunchDelaySeconds {app.max_launch_delay_seconds!r}; Marathon's default is 300 (3600 before 1.8)",
    )
    check(app.require_ports is False, f"get_app: requirePorts {app.require_ports!r}; Marathon's default is false")
    # killSelection is in the answers of Marathon 1.5+ (not in its older documented examples).
    check(
        app.kill_selection in (None, "YOUNGEST_FIRST"),
        f"get_app: killSelection {app.kill_selection!r}; Marathon's default is YOUNGEST_FIRST",
    )
    strategy = app.upgrade_strategy
    check(
        strategy is not None and strategy.minimum_health_capacity == 1 and strategy.maximum_over_capacity == 1,
        f"get_app: upgradeStrategy {strategy and vars(strategy)}; Marathon's default is minimumHealthCapacity 1, maximumOverCapacity 1",
    )
    info = app.version_info
    check(
        info is not None and info.last_scaling_at is not None and info.last_config_change_at is not None,
        f"get_app: versionInfo {info and vars(info)}; Marathon gives lastScalingAt and lastConfigChangeAt",
    )
    check(
        (app.tasks_running, app.tasks_staged, app.tasks_healthy, app.tasks_unhealthy) == (2, 0, 0, 0),
        f"get_app: tasksRunning/Staged/Healthy/Unhealthy = {app.tasks_running}/{app.tasks_staged}/{app.tasks_healthy}/{app.tasks_unhealthy}, expected 2/0/0/0",
    )
    check(len(app.tasks) == 2, f"get_app: {len(app.tasks)} embedded tasks, expected 2 (GET /v2/apps/{{id}} embeds tasks)")
    # An app posted without ports gets Marathon's default port definition (port 0), and port 0
    # becomes a service port of its own from --local_port_min/max (10000-20000 by default).
    check(len(app.port_definitions) == 1, f"get_app: portDefinitions {[vars(p) for p in app.port_definitions]}, expected Marathon's one default")
    service_port = app.port_definitions[0].port
    check(10000 <= service_port <= 20000, f"get_app: service port {service_port!r}, expected one in 10000-20000")
    # The legacy `ports` (older Marathons return it; 1.10 drops it) are the service ports.
    check(app.ports in ([], [service_port]), f"get_app: ports {app.ports!r}, expected [{service_port}] (the service ports)")
    for task in tasks:
        check(task.service_ports == [service_port], f"list_tasks: task {task.id} servicePorts {task.service_ports!r}, expected [{service_port}]")
        check(len(task.ports) == 1 and task.ports[0] > 0, f"list_tasks: task {task.id} ports {task.ports!r}, expected one host port")
    listed = client.list_apps(embed_tasks=True, embed_counts=True, embed_deployments=True, embed_last_task_failure=True)
    ours = [a for a in listed if a.id == APP]
    check(len(ours) == 1 and len(ours[0].tasks) == 2 and ours[0].tasks_running == 2,
          f"list_apps(embed tasks, counts): {[(a.id, len(a.tasks), a.tasks_running) for a in listed]}")

    step("scale_app to 3")
    scaled = client.scale_app(APP_PATH, instances=3)
    check_deployment_result(scaled, "scale_app (PUT /v2/apps/{id})")
    scaled_version = scaled["version"]
    await_running(client, APP_PATH, 3, "after scale_app(instances=3)")
    check(client.get_app(APP_PATH).instances == 3, "get_app after scale_app: instances is not 3")
    wait_for(f"no deployment of {APP} after scaling", lambda: no_deployment_of(client, APP))

    step("kill_task(scale=True): one fewer, not relaunched")
    before = running_tasks(client, APP_PATH)
    victim = before[0].id
    killed = client.kill_task(APP_PATH, victim, scale=True)
    check_deployment_result(killed, f"kill_task(scale=True) (DELETE /v2/apps/{APP_PATH}/tasks/{{id}}?scale=True)")
    survivors = {t.id for t in before} - {victim}
    wait_for(
        f"task {victim} gone and the app scaled to 2",
        lambda: {t.id for t in client.list_tasks(APP_PATH)} == survivors and client.get_app(APP_PATH).instances == 2,
    )
    wait_for(f"no deployment of {APP} after kill_task(scale=True)", lambda: no_deployment_of(client, APP))
    after = {t.id for t in client.list_tasks(APP_PATH)}
    check(after == survivors, f"kill_task(scale=True): the app's tasks are {after}, expected {survivors} (no relaunch)")
    check(client.get_app(APP_PATH).instances == 2, "kill_task(scale=True): instances is not 2")

    step("list_versions / get_version")
    versions = client.list_versions(APP_PATH)
    check(
        first_version in versions and scaled_version in versions,
        f"list_versions: {versions} lacks the create version {first_version} or the scale version {scaled_version}",
    )
    old = client.get_version(APP_PATH, first_version)
    check(old.id == APP and old.instances == 2, f"get_version({first_version}): id {old.id!r}, instances {old.instances!r}")
    at_scale = client.get_version(APP_PATH, scaled_version)
    check(at_scale.instances == 3, f"get_version({scaled_version}): instances {at_scale.instances!r}, expected 3")

    step("rollback_app to the 3-instance version")
    rolled = client.rollback_app(APP_PATH, scaled_version)
    check_deployment_result(rolled, "rollback_app (PUT /v2/apps/{id} {version})")
    await_running(client, APP_PATH, 3, "after rollback_app")
    check(client.get_app(APP_PATH).instances == 3, "rollback_app: instances is not back to 3")
    wait_for(f"no deployment of {APP} after rollback", lambda: no_deployment_of(client, APP))

    step("restart_app: every task replaced")
    old_ids = {t.id for t in running_tasks(client, APP_PATH)}
    restarted = client.restart_app(APP_PATH)
    check_deployment_result(restarted, "restart_app (POST /v2/apps/{id}/restart)")
    wait_for(
        "3 running tasks, none of them from before the restart",
        lambda: (lambda ts: len(ts) == 3 and not ({t.id for t in ts} & old_ids))(running_tasks(client, APP_PATH))
        and len(client.list_tasks(APP_PATH)) == 3,
    )

    step("create_group / get_group / delete_group")
    group = MarathonGroup(id=GROUP, apps=[MarathonApp(id=GROUP_APP, cmd="sleep 100000", cpus=0.1, mem=16, instances=1)])
    made = client.create_group(group)
    check_deployment_result(made, "create_group (POST /v2/groups)")
    got = client.get_group(GROUP.lstrip("/"))
    check(got.id == GROUP, f"get_group: id {got.id!r}, expected {GROUP}")
    check([a.id for a in got.apps] == [GROUP_APP], f"get_group: apps {[a.id for a in got.apps]}, expected [{GROUP_APP}]")
    await_running(client, GROUP_APP.lstrip("/"), 1, "the group's app")
    member = client.get_app(GROUP_APP.lstrip("/"))
    member_port = member.port_definitions[0].port if member.port_definitions else None
    check(
        member_port is not None and member_port != service_port and 10000 <= member_port <= 20000,
        f"the group's app got service port {member_port!r}; Marathon gives each app its own (the first app has {service_port})",
    )
    groups = client.list_groups()
    check(GROUP in [g.id for g in groups], f"list_groups: {GROUP} missing from {[g.id for g in groups]}")
    deleted = client.delete_group(GROUP.lstrip("/"), force=True)
    check(isinstance(deleted, dict) and isinstance(deleted.get("version"), str), f"delete_group returned {deleted!r}")

    def group_gone():
        try:
            client.get_group(GROUP.lstrip("/"))
            return False
        except NotFoundError:
            return True

    wait_for(f"GET /v2/groups{GROUP} to be 404 after delete_group", group_gone)

    step("list_queue: an app that no agent can hold waits in the queue")
    stuck = MarathonApp(cmd="sleep 100000", cpus=64, mem=16, instances=1)
    check(client.create_app(STUCK.lstrip("/"), stuck) is not False, "create_app of the unplaceable app failed")
    item = wait_for(f"{STUCK} in GET /v2/queue", lambda: queue_item(client, STUCK))
    check(item.count == 1, f"list_queue: {STUCK} has count {item.count!r}, expected 1 instance left to launch")
    check(item.delay is not None and item.delay.overdue is not None, f"list_queue: {STUCK} lacks delay.overdue")
    check(item.app.instances == 1 and item.app.cpus == 64, f"list_queue: {STUCK}'s app is {vars(item.app)}")

    step("delete_app during a deployment: 409 without force, done with force=True")
    try:
        client.delete_app(STUCK.lstrip("/"))
    except ConflictError:
        pass
    else:
        check(False, f"delete_app({STUCK}) during its deployment succeeded; Marathon answers 409 (app locked)")
    removed = client.delete_app(STUCK.lstrip("/"), force=True)
    check_deployment_result(removed, "delete_app(force=True) (DELETE /v2/apps/{id}?force=True)")

    step("delete_app(force=True) of the running app")
    removed = client.delete_app(APP_PATH, force=True)
    check_deployment_result(removed, "delete_app(force=True)")

    def app_gone(app_path):
        try:
            client.get_app(app_path)
            return False
        except NotFoundError:
            return True

    wait_for(f"GET /v2/apps{APP} to be 404", lambda: app_gone(APP_PATH) and app_gone(STUCK.lstrip("/")))
    wait_for(
        f"no task of {APP} or {STUCK} in list_tasks()",
        lambda: not [t for t in client.list_tasks() if t.app_id in (APP, STUCK)],
    )
    wait_for(f"{STUCK} out of GET /v2/queue", lambda: queue_item(client, STUCK) is None)

    step("event stream: the events of all the above, parsed by the client")
    try:
        wait_for(f"the event types {sorted(EXPECTED_EVENTS)} on /v2/events", lambda: EXPECTED_EVENTS <= events.seen())
    except Wrong as wrong:
        raise Wrong(f"{wrong}; types seen: {sorted(events.seen())}") from None


if __name__ == "__main__":
    run(main)
