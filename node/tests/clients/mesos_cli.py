"""The Apache Mesos CLI (PyPI `avmesos-cli`, 1.0.0) against the cluster: `mesos agent list`,
`mesos framework list` and `mesos task list`, with the leader found through ZooKeeper as the CLI's
config file allows and then from the master's address, must name the agents, framework and
tasks that exist.

Usage: python mesos_cli.py EXPECTED_JSON
  EXPECTED_JSON  {"zk_addresses": ["127.0.0.1:p", ...], "zk_path": "/mesos", "master": "127.0.0.1:p",
                  "agents": [agent id, ...], "frameworks": [{"id": ..., "name": ...}],
                  "tasks": [task id, ...]}
"""

import json
import os
import subprocess
import sys
import tempfile

from clientlib import check, run, step


def mesos(config_path, *args):
    """Runs `mesos <args>` from the venv's avmesos-cli; returns its stdout, failing on an error."""
    command = [sys.executable, "-m", "avmesos.cli.mesos-cli", *args]
    done = subprocess.run(
        command,
        env={**os.environ, "MESOS_CLI_CONFIG": config_path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    shown = f"`mesos {' '.join(args)}` exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    check(done.returncode == 0 and "Error" not in done.stdout and "Error" not in done.stderr, shown)
    print(done.stdout, flush=True)
    return done.stdout


def rows(output):
    """The table's rows after its header, split into cells (no cell holds a space)."""
    lines = [line for line in output.splitlines() if line.strip()]
    return [line.split() for line in lines[1:]]


def main():
    expected = json.loads(sys.argv[1])
    addresses = ", ".join(f'"{a}"' for a in expected["zk_addresses"])
    configs = {
        "the leader found through ZooKeeper": f'[master.zookeeper]\naddresses = [{addresses}]\npath = "{expected["zk_path"]}"\n',
        "the master's address": f'[master]\naddress = "{expected["master"]}"\n',
    }
    with tempfile.TemporaryDirectory() as tmp:
        for how, text in configs.items():
            config_path = os.path.join(tmp, "config.toml")
            with open(config_path, "w") as config:
                config.write(text)
            list_everything(config_path, how, expected)


def list_everything(config_path, how, expected):
    step(f"mesos agent list, with {how}")
    output = mesos(config_path, "agent", "list")
    listed = {row[0] for row in rows(output)}
    check(
        listed == set(expected["agents"]),
        f"`mesos agent list` lists agents {sorted(listed)}, expected {sorted(expected['agents'])}",
    )
    for row in rows(output):
        check(row[-1] == "True", f"`mesos agent list`: agent {row[0]} is not active: {row}")

    step(f"mesos framework list, with {how}")
    output = mesos(config_path, "framework", "list")
    listed = {row[0]: row for row in rows(output)}
    for framework in expected["frameworks"]:
        row = listed.get(framework["id"])
        check(row is not None, f"`mesos framework list` lacks framework {framework['id']}: {output}")
        check(row[-1] == framework["name"], f"`mesos framework list`: {framework['id']} is named {row[-1]!r}")
        check(row[1] == "True", f"`mesos framework list`: {framework['id']} is not active")

    step(f"mesos task list, with {how}")
    output = mesos(config_path, "task", "list")
    listed = {row[0]: row for row in rows(output)}
    check(
        set(listed) == set(expected["tasks"]),
        f"`mesos task list` lists tasks {sorted(listed)}, expected {sorted(expected['tasks'])}",
    )
    framework_ids = {f["id"] for f in expected["frameworks"]}
    for task_id, row in listed.items():
        check(row[1] == "TASK_RUNNING", f"`mesos task list`: {task_id} is {row[1]}")
        check(row[2] in framework_ids, f"`mesos task list`: {task_id} belongs to framework {row[2]}")


if __name__ == "__main__":
    run(main)
