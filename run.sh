#!/usr/bin/env bash
# Start Berth and run something real, on a machine with no internet access:
#
#   1. installs what Berth needs (Debian packages: runc, iproute2, nftables,
#      docker-registry, busybox-static; a Python venv with the aws CLI),
#   2. starts Debian's registry on 127.0.0.1:5000 (unless one answers there)
#      and pushes a small busybox web image built locally,
#   3. starts `berth up` (server + agent, cluster "default") on
#      127.0.0.1:4566 with its data in ./berth-data,
#   4. with the aws CLI: creates an application load balancer with a
#      listener on 127.0.0.1:8080 ($BERTH_LB_PORT) and a target group,
#      registers examples/hello.json, creates the service "hello" with 3
#      tasks behind the load balancer, waits until it is stable and its
#      targets are healthy, and fetches pages through the load balancer and
#      from each task's host port with curl.
#
# Berth keeps serving in the foreground and keeps the service at 3 tasks
# (stop one and watch it come back); Ctrl-C deletes the service and the
# load balancer and stops Berth and the registry. Needs root (containers, cgroups, network
# namespaces).
set -euo pipefail
cd "$(dirname "$0")"

LISTEN="${BERTH_LISTEN:-127.0.0.1:4566}"
DATA_DIR="${BERTH_DATA_DIR:-./berth-data}"
REGISTRY="127.0.0.1:5000"

./test.sh --deps-only
PATH="$PWD/.venv/bin:$PATH"

cargo build --release -p berth
cargo build --release -p berth-testkit --example demo_image
TARGET="${CARGO_TARGET_DIR:-target}/release"
BIN="$TARGET/berth"
mkdir -p "$DATA_DIR"

# Berth and the registry run in sessions of their own, so Ctrl-C reaches
# only this script, which stops the tasks through the API before stopping
# Berth (containers outlive `berth up` by design).
pids=()
cleanup() {
    set +e
    trap - INT TERM
    if [ -n "${AWS_ACCESS_KEY_ID:-}" ]; then
        if aws ecs delete-service --cluster default --service hello --force >/dev/null 2>&1; then
            echo "deleting the service hello"
            aws ecs wait services-inactive --cluster default --services hello
        fi
        lb=$(aws elbv2 describe-load-balancers --names hello --query 'LoadBalancers[0].LoadBalancerArn' --output text 2>/dev/null)
        if [ -n "$lb" ] && [ "$lb" != None ]; then
            echo "deleting the load balancer hello"
            aws elbv2 delete-load-balancer --load-balancer-arn "$lb"
        fi
        tg=$(aws elbv2 describe-target-groups --names hello-tg --query 'TargetGroups[0].TargetGroupArn' --output text 2>/dev/null)
        if [ -n "$tg" ] && [ "$tg" != None ]; then
            aws elbv2 delete-target-group --target-group-arn "$tg"
        fi
        running=$(aws ecs list-tasks --cluster default --desired-status RUNNING --query 'taskArns[]' --output text 2>/dev/null)
        if [ -n "$running" ]; then
            echo "stopping tasks: $running"
            for t in $running; do aws ecs stop-task --cluster default --task "$t" --reason "run.sh stopped" >/dev/null; done
            aws ecs wait tasks-stopped --cluster default --tasks $running
        fi
    fi
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then
    mkdir -p "$DATA_DIR/registry"
    cat >"$DATA_DIR/registry.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $(realpath "$DATA_DIR")/registry}, delete: {enabled: true}}
http: {addr: $REGISTRY}
YAML
    setsid docker-registry serve "$DATA_DIR/registry.yml" >"$DATA_DIR/registry.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
fi
"$TARGET/examples/demo_image" push "$REGISTRY" demo/busybox 1

out="$DATA_DIR/berth-up.out"
setsid "$BIN" up --listen "$LISTEN" --data-dir "$DATA_DIR" >"$out" &
pids+=($!)
for _ in $(seq 1 200); do grep -q '^ready ' "$out" && break; sleep 0.1; done
grep -q '^ready ' "$out" || { cat "$out"; echo "berth up did not start" >&2; exit 1; }
cat "$out"

creds="$DATA_DIR/root-credentials.json"
export AWS_ENDPOINT_URL="http://$LISTEN" AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID="${BERTH_ROOT_ACCESS_KEY_ID:-$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accessKeyId"])' "$creds")}"
export AWS_SECRET_ACCESS_KEY="${BERTH_ROOT_SECRET_ACCESS_KEY:-$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secretAccessKey"])' "$creds")}"

for _ in $(seq 1 100); do
    [ -n "$(aws ecs list-container-instances --cluster default --query 'containerInstanceArns[0]' --output text | grep -v None)" ] && break
    sleep 0.2
done

LB_PORT="${BERTH_LB_PORT:-8080}"
set -x
lb=$(aws elbv2 create-load-balancer --name hello --type application \
    --subnets $(aws ec2 describe-subnets --query 'Subnets[].SubnetId' --output text) \
    --query 'LoadBalancers[0].LoadBalancerArn' --output text)
tg=$(aws elbv2 create-target-group --name hello-tg --protocol HTTP --port 8080 --target-type instance \
    --vpc-id "$(aws elbv2 describe-load-balancers --load-balancer-arns "$lb" --query 'LoadBalancers[0].VpcId' --output text)" \
    --health-check-path / --health-check-interval-seconds 5 --health-check-timeout-seconds 2 --healthy-threshold-count 2 \
    --query 'TargetGroups[0].TargetGroupArn' --output text)
aws elbv2 modify-target-group-attributes --target-group-arn "$tg" \
    --attributes Key=deregistration_delay.timeout_seconds,Value=5 --query 'Attributes[0]' --output text
aws elbv2 describe-listeners --load-balancer-arn "$lb" --query 'Listeners[0].ListenerArn' --output text | grep -q arn: ||
    aws elbv2 create-listener --load-balancer-arn "$lb" --protocol HTTP --port "$LB_PORT" \
        --default-actions "Type=forward,TargetGroupArn=$tg" --query 'Listeners[0].ListenerArn'
aws ecs register-task-definition --cli-input-json file://examples/hello.json --query 'taskDefinition.taskDefinitionArn'
if [ "$(aws ecs describe-services --cluster default --services hello --query 'services[0].status' --output text)" = ACTIVE ]; then
    aws ecs update-service --cluster default --service hello --task-definition hello --desired-count 3 --query 'service.serviceArn'
else
    aws ecs create-service --cluster default --service-name hello --task-definition hello --desired-count 3 \
        --deployment-configuration 'minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=true}' \
        --load-balancers "targetGroupArn=$tg,containerName=web,containerPort=8080" --health-check-grace-period-seconds 15 \
        --query 'service.serviceArn'
fi
aws ecs wait services-stable --cluster default --services hello
aws ecs describe-services --cluster default --services hello --query 'services[0].events[0].message'
tasks=$(aws ecs list-tasks --cluster default --service-name hello --query 'taskArns[]' --output text)
aws ecs describe-tasks --cluster default --tasks $tasks \
    --query 'tasks[].{task:taskArn,status:lastStatus,hostPort:containers[0].networkBindings[0].hostPort}' --output table
for _ in $(seq 1 60); do
    [ "$(aws elbv2 describe-target-health --target-group-arn "$tg" --query 'length(TargetHealthDescriptions[?TargetHealth.State==`healthy`])')" = 3 ] && break
    sleep 1
done
aws elbv2 describe-target-health --target-group-arn "$tg" \
    --query 'TargetHealthDescriptions[].{target:Target.Id,port:Target.Port,state:TargetHealth.State}' --output table
set +x
for _ in 1 2 3; do
    echo "curl http://127.0.0.1:$LB_PORT/ (load balancer) -> $(curl -fsS "http://127.0.0.1:$LB_PORT/")"
done
for port in $(aws ecs describe-tasks --cluster default --tasks $tasks --query 'tasks[].containers[0].networkBindings[0].hostPort' --output text); do
    echo "curl http://127.0.0.1:$port/ -> $(curl -fsS "http://127.0.0.1:$port/")"
done
first=$(echo $tasks | cut -d' ' -f1)
echo
echo "Berth is running on http://$LISTEN with the service hello (3 tasks) behind http://127.0.0.1:$LB_PORT/. In another shell:"
echo "  export AWS_ENDPOINT_URL=http://$LISTEN AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=<from $creds>"
echo "  $BIN logs ${first##*/} --data-dir $DATA_DIR"
echo "  aws ecs stop-task --task ${first##*/}       # the service replaces it"
echo "  aws ecs update-service --service hello --desired-count 5"
echo "Ctrl-C deletes the service and stops Berth."
while kill -0 "${pids[-1]}" 2>/dev/null; do sleep 1; done
