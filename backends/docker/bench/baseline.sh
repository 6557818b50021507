#!/usr/bin/env bash
# Baseline for the sim's start-up time: the same containers (same image, same node
# configuration, same addresses and limits) started with plain `docker run`, timed until
# ZooKeeper has a quorum. Compare with `cargo run -p paas-docker --example sim -- up`.
#
# Usage: backends/docker/bench/baseline.sh  (the default cluster must be down; it is brought
# up once with the example to collect each node's configuration, then removed again).
set -euo pipefail

sim=${SIM:-target/debug/examples/sim}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$sim" up >/dev/null
image=$(docker inspect --format '{{.Config.Image}}' paas-master-1)
nodes=$(docker ps --filter label=paas.cluster=paas --format '{{.Names}}')
for c in $nodes; do
  docker cp "$c:/etc/paas/node.json" "$work/$c.json"
  docker inspect --format '{{index .Config.Labels "paas.address"}} {{.HostConfig.Memory}} {{range $p, $b := .HostConfig.PortBindings}}{{(index $b 0).HostPort}}:{{$p}}{{end}}' "$c" >"$work/$c.meta"
done
"$sim" down >/dev/null

start=$(date +%s.%N)
docker network create --subnet 10.20.0.0/16 --gateway 10.20.0.1 paas-baseline >/dev/null
for c in $nodes; do
  read -r address memory publish <"$work/$c.meta"
  args=(--detach --name "baseline-$c" --network paas-baseline --ip "$address" --memory "$memory" --memory-swap "$memory"
        --cap-add NET_ADMIN -v "$work/$c.json:/etc/paas/node.json:ro")
  if [ -n "$publish" ]; then args+=(--publish "127.0.0.1:${publish%/tcp}"); fi
  docker run "${args[@]}" "$image" --config /etc/paas/node.json >/dev/null &
done
wait
masters=$(for c in $nodes; do case $c in *master*) cut -d' ' -f1 "$work/$c.meta";; esac; done)
until
  leaders=0; serving=0
  for m in $masters; do
    mode=$( (exec 3<>"/dev/tcp/$m/2181" && printf srvr >&3 && cat <&3) 2>/dev/null | sed -n 's/^Mode: //p' || true)
    [ -n "$mode" ] && serving=$((serving + 1))
    [ "$mode" = leader ] && leaders=$((leaders + 1))
  done
  [ "$leaders" = 1 ] && [ "$serving" -ge 2 ]
do sleep 0.1; done
end=$(date +%s.%N)
echo "plain docker run, 12 containers, to ZooKeeper quorum: $(echo "$end - $start" | bc) s"

for c in $nodes; do docker rm -f "baseline-$c" >/dev/null; done
docker network rm paas-baseline >/dev/null
