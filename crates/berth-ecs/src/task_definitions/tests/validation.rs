//! Every validation rule, with the exception class ECS uses for it.

use super::registration::fargate_body;
use super::*;
use proptest::prelude::*;

/// A valid bridge-mode definition with two containers to mutate.
fn two() -> Value {
    json!({
        "family": "v",
        "containerDefinitions": [
            {"name": "app", "image": "nginx", "memory": 256},
            {"name": "side", "image": "busybox", "memory": 64, "essential": false}
        ]
    })
}

fn set(mut body: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let target = if parent.is_empty() {
        &mut body
    } else {
        body.pointer_mut(parent).expect("parent exists")
    };
    match target {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
        }
        Value::Array(a) => {
            let i: usize = key.parse().expect("array index");
            if i < a.len() {
                a[i] = value;
            } else {
                a.push(value);
            }
        }
        _ => panic!("cannot set {pointer}"),
    }
    body
}

fn remove(mut body: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let target = if parent.is_empty() {
        &mut body
    } else {
        body.pointer_mut(parent).expect("parent exists")
    };
    target.as_object_mut().expect("object parent").remove(key);
    body
}

async fn expect(body: Value, class: &str, message: &str) {
    let s = new_store();
    match reg(s.as_ref(), body.clone()).await {
        Ok(_) => panic!("accepted, expected {class} '{message}': {body}"),
        Err(e) => {
            assert_eq!(code(&e), class, "{e} for {body}");
            assert!(e.to_string().contains(message), "'{e}' lacks '{message}'");
        }
    }
}

async fn accept(body: Value) {
    let s = new_store();
    if let Err(e) = reg(s.as_ref(), body.clone()).await {
        panic!("refused with {}: {e} for {body}", code(&e));
    }
}

const CLIENT: &str = "ClientException";
const INVALID: &str = "InvalidParameterException";
const SERIAL: &str = "SerializationException";

#[tokio::test]
async fn the_baselines_are_valid() {
    accept(two()).await;
    accept(fargate_body("f")).await;
}

#[tokio::test]
async fn family_rules() {
    expect(remove(two(), "/family"), INVALID, "family can not be blank").await;
    expect(
        set(two(), "/family", json!("")),
        INVALID,
        "family can not be blank",
    )
    .await;
    expect(
        set(two(), "/family", json!("bad family")),
        CLIENT,
        "Family contains invalid characters",
    )
    .await;
    expect(
        set(two(), "/family", json!("a".repeat(256))),
        CLIENT,
        "Family contains invalid characters",
    )
    .await;
    accept(set(two(), "/family", json!("A-z_09"))).await;
}

#[tokio::test]
async fn container_list_rules() {
    expect(
        remove(two(), "/containerDefinitions"),
        CLIENT,
        "Container list cannot be empty.",
    )
    .await;
    expect(
        set(two(), "/containerDefinitions", json!([])),
        CLIENT,
        "Container list cannot be empty.",
    )
    .await;
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"name": format!("c{i}"), "image": "x", "memory": 16}))
        .collect();
    expect(
        set(two(), "/containerDefinitions", json!(eleven)),
        CLIENT,
        "Too many containers. The maximum is 10.",
    )
    .await;
    let ten: Vec<Value> = (0..10)
        .map(|i| json!({"name": format!("c{i}"), "image": "x", "memory": 16}))
        .collect();
    accept(set(two(), "/containerDefinitions", json!(ten))).await;
}

#[tokio::test]
async fn container_name_and_image_rules() {
    expect(
        remove(two(), "/containerDefinitions/0/name"),
        CLIENT,
        "Container.name should not be null or empty.",
    )
    .await;
    expect(
        set(two(), "/containerDefinitions/0/name", json!("a b")),
        CLIENT,
        "Invalid container name 'a b'",
    )
    .await;
    expect(
        set(two(), "/containerDefinitions/1/name", json!("app")),
        CLIENT,
        "Duplicate container name 'app'",
    )
    .await;
    expect(
        remove(two(), "/containerDefinitions/0/image"),
        CLIENT,
        "Container.image should not be null or empty.",
    )
    .await;
    expect(
        set(two(), "/containerDefinitions/0/image", json!("")),
        CLIENT,
        "Container.image should not be null or empty.",
    )
    .await;
}

#[tokio::test]
async fn memory_rules() {
    expect(
        remove(two(), "/containerDefinitions/0/memory"),
        CLIENT,
        "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified.",
    )
    .await;
    // Either member, or task memory, satisfies the rule.
    accept(set(
        remove(two(), "/containerDefinitions/0/memory"),
        "/containerDefinitions/0/memoryReservation",
        json!(64),
    ))
    .await;
    accept(set(
        remove(two(), "/containerDefinitions/0/memory"),
        "/memory",
        json!("512"),
    ))
    .await;
    let b = set(
        two(),
        "/containerDefinitions/0/memoryReservation",
        json!(512),
    );
    expect(
        b,
        CLIENT,
        "'memory' must be greater than or equal to 'memoryReservation'",
    )
    .await;
    expect(
        set(two(), "/containerDefinitions/0/memory", json!(4)),
        CLIENT,
        "Invalid 'memory' setting for container 'app'",
    )
    .await;
    expect(
        set(two(), "/containerDefinitions/0/memoryReservation", json!(5)),
        CLIENT,
        "Invalid 'memoryReservation'",
    )
    .await;
    expect(
        set(two(), "/memory", json!("128")),
        CLIENT,
        "Container memory (256 MiB) must not exceed the task memory",
    )
    .await;
    expect(
        set(two(), "/memory", json!("300")),
        CLIENT,
        "exceeds the task memory (300 MiB)",
    )
    .await;
    expect(
        set(two(), "/memory", json!("lots")),
        INVALID,
        "Invalid 'memory' setting for task.",
    )
    .await;
}

#[tokio::test]
async fn cpu_rules() {
    expect(
        set(two(), "/cpu", json!("")),
        INVALID,
        "Invalid 'cpu' setting for task.",
    )
    .await;
    expect(
        set(two(), "/cpu", json!("64")),
        CLIENT,
        "Invalid 'cpu' setting for task.",
    )
    .await;
    let b = set(
        set(two(), "/cpu", json!("256")),
        "/containerDefinitions/0/cpu",
        json!(300),
    );
    expect(
        b,
        CLIENT,
        "The sum of the container cpu values (300) exceeds the task cpu (256)",
    )
    .await;
    expect(
        set(two(), "/containerDefinitions/0/cpu", json!(-1)),
        CLIENT,
        "Invalid 'cpu' setting for container 'app'",
    )
    .await;
}

#[tokio::test]
async fn fargate_rules() {
    expect(
        set(fargate_body("f"), "/networkMode", json!("bridge")),
        CLIENT,
        "Fargate only supports network mode 'awsvpc'.",
    )
    .await;
    expect(
        remove(fargate_body("f"), "/networkMode"),
        CLIENT,
        "Fargate only supports network mode 'awsvpc'.",
    )
    .await;
    expect(
        remove(fargate_body("f"), "/cpu"),
        CLIENT,
        "Fargate requires that 'cpu' be defined at the task level.",
    )
    .await;
    expect(
        remove(fargate_body("f"), "/memory"),
        CLIENT,
        "Fargate requires that 'memory' be defined at the task level.",
    )
    .await;
    expect(
        set(fargate_body("f"), "/memory", json!("4096")),
        CLIENT,
        "No Fargate configuration exists for given values: 256 CPU, 4096 memory.",
    )
    .await;
    for (cpu, mem) in [
        ("512", "3072"),
        ("4096", "30720"),
        ("8192", "20480"),
        ("16384", "122880"),
    ] {
        accept(set(
            set(fargate_body("f"), "/cpu", json!(cpu)),
            "/memory",
            json!(mem),
        ))
        .await;
    }
    expect(
        set(
            fargate_body("f"),
            "/containerDefinitions/0/privileged",
            json!(true),
        ),
        CLIENT,
        "Fargate does not support privileged containers.",
    )
    .await;
    expect(
        remove(fargate_body("f"), "/executionRoleArn"),
        CLIENT,
        "Fargate requires task definition to have execution role ARN",
    )
    .await;
    expect(
        set(
            fargate_body("f"),
            "/containerDefinitions/0/logConfiguration/logDriver",
            json!("json-file"),
        ),
        CLIENT,
        "Fargate does not support the json-file log driver",
    )
    .await;
    expect(
        set(
            fargate_body("f"),
            "/placementConstraints",
            json!([{"type": "memberOf", "expression": "attribute:x == y"}]),
        ),
        CLIENT,
        "Fargate does not support task placement constraints.",
    )
    .await;
    expect(
        set(
            fargate_body("f"),
            "/volumes",
            json!([{"name": "d", "host": {"sourcePath": "/x"}}]),
        ),
        CLIENT,
        "Fargate does not support host volumes with a sourcePath.",
    )
    .await;
    accept(set(
        fargate_body("f"),
        "/volumes",
        json!([{"name": "d", "host": {}}]),
    ))
    .await;
    expect(
        set(
            fargate_body("f"),
            "/containerDefinitions/0/linuxParameters",
            json!({"capabilities": {"add": ["NET_ADMIN"]}}),
        ),
        CLIENT,
        "SYS_PTRACE",
    )
    .await;
}

#[tokio::test]
async fn external_rules() {
    let b = set(
        fargate_body("x"),
        "/requiresCompatibilities",
        json!(["EXTERNAL"]),
    );
    expect(
        b,
        CLIENT,
        "External instances do not support network mode 'awsvpc'.",
    )
    .await;
    accept(set(
        two(),
        "/requiresCompatibilities",
        json!(["EXTERNAL", "EC2"]),
    ))
    .await;
}

#[tokio::test]
async fn network_mode_rules() {
    let ports = |mode: &str, pm: Value| {
        set(
            set(two(), "/networkMode", json!(mode)),
            "/containerDefinitions/0/portMappings",
            pm,
        )
    };
    expect(
        ports("awsvpc", json!([{"containerPort": 80, "hostPort": 8080}])),
        CLIENT,
        "When networkMode=awsvpc, the host ports and container ports in port mappings must match.",
    )
    .await;
    expect(
        ports("host", json!([{"containerPort": 80, "hostPort": 8080}])),
        CLIENT,
        "When networkMode=host, the host ports and container ports in port mappings must match.",
    )
    .await;
    accept(ports(
        "awsvpc",
        json!([{"containerPort": 80, "hostPort": 80}]),
    ))
    .await;
    accept(ports(
        "bridge",
        json!([{"containerPort": 80, "hostPort": 8080}]),
    ))
    .await;
    expect(
        ports("none", json!([{"containerPort": 80}])),
        CLIENT,
        "Port mappings are not supported when networkMode=none.",
    )
    .await;
    expect(
        ports("weird", json!([])),
        INVALID,
        "Invalid value 'weird' for networkMode",
    )
    .await;
    let links = set(two(), "/containerDefinitions/0/links", json!(["side"]));
    accept(links.clone()).await;
    accept(set(links.clone(), "/networkMode", json!("bridge"))).await;
    expect(
        set(links.clone(), "/networkMode", json!("awsvpc")),
        CLIENT,
        "Links are not supported when networkMode=awsvpc.",
    )
    .await;
    expect(
        set(links.clone(), "/networkMode", json!("host")),
        CLIENT,
        "Links are not supported when networkMode=host.",
    )
    .await;
    expect(
        set(
            two(),
            "/containerDefinitions/0/links",
            json!(["ghost:alias"]),
        ),
        CLIENT,
        "'ghost' is not another container",
    )
    .await;
    let awsvpc = set(two(), "/networkMode", json!("awsvpc"));
    expect(
        set(
            awsvpc.clone(),
            "/containerDefinitions/0/hostname",
            json!("h"),
        ),
        CLIENT,
        "hostname is not supported",
    )
    .await;
    expect(
        set(
            awsvpc,
            "/containerDefinitions/0/extraHosts",
            json!([{"hostname": "h", "ipAddress": "10.0.0.1"}]),
        ),
        CLIENT,
        "extraHosts is not supported",
    )
    .await;
}

#[tokio::test]
async fn port_mapping_rules() {
    let pm = |m: Value| set(two(), "/containerDefinitions/0/portMappings", json!([m]));
    expect(
        pm(json!({"containerPort": 0})),
        CLIENT,
        "containerPort must be between 1 and 65535.",
    )
    .await;
    expect(
        pm(json!({"containerPort": 65536})),
        CLIENT,
        "containerPort must be between 1 and 65535.",
    )
    .await;
    expect(
        pm(json!({"containerPort": 80, "hostPort": 70000})),
        CLIENT,
        "hostPort must be between 0 and 65535.",
    )
    .await;
    expect(
        pm(json!({"containerPort": 80, "protocol": "sctp"})),
        INVALID,
        "Invalid value 'sctp' for portMappings.protocol",
    )
    .await;
    expect(
        pm(json!({"containerPort": 80, "appProtocol": "ftp"})),
        INVALID,
        "appProtocol",
    )
    .await;
    expect(
        pm(json!({"hostPort": 80})),
        CLIENT,
        "Specify either containerPort or containerPortRange.",
    )
    .await;
    expect(
        pm(json!({"containerPort": 80, "containerPortRange": "80-90"})),
        CLIENT,
        "Specify either",
    )
    .await;
    expect(
        pm(json!({"containerPortRange": "90-80"})),
        CLIENT,
        "containerPortRange '90-80' is invalid",
    )
    .await;
    expect(
        pm(json!({"containerPortRange": "8000"})),
        CLIENT,
        "is invalid",
    )
    .await;
    expect(
        pm(json!({"containerPortRange": "8000-8010", "hostPort": 8000})),
        CLIENT,
        "hostPort cannot be specified",
    )
    .await;
    accept(pm(json!({"containerPortRange": "8000-8010"}))).await;
    expect(
        set(
            pm(json!({"containerPortRange": "8000-8010"})),
            "/networkMode",
            json!("host"),
        ),
        CLIENT,
        "containerPortRange is supported only",
    )
    .await;
    expect(
        pm(json!({"containerPort": 80, "name": "-web"})),
        CLIENT,
        "Port mapping name '-web' is invalid",
    )
    .await;
    let dup = set(
        set(
            two(),
            "/containerDefinitions/0/portMappings",
            json!([{"containerPort": 80, "name": "web"}]),
        ),
        "/containerDefinitions/1/portMappings",
        json!([{"containerPort": 81, "name": "web"}]),
    );
    expect(dup, CLIENT, "Port mapping names must be unique").await;
}

#[tokio::test]
async fn dependency_rules() {
    let dep = |d: Value| set(two(), "/containerDefinitions/0/dependsOn", json!([d]));
    accept(dep(json!({"containerName": "side", "condition": "START"}))).await;
    accept(dep(
        json!({"containerName": "side", "condition": "COMPLETE"}),
    ))
    .await;
    expect(
        dep(json!({"containerName": "ghost", "condition": "START"})),
        CLIENT,
        "'ghost' is not another container",
    )
    .await;
    expect(
        dep(json!({"containerName": "app", "condition": "START"})),
        CLIENT,
        "'app' is not another container",
    )
    .await;
    expect(
        dep(json!({"containerName": "side", "condition": "BOGUS"})),
        INVALID,
        "Invalid value 'BOGUS' for dependsOn.condition",
    )
    .await;
    expect(
        dep(json!({"containerName": "side", "condition": "HEALTHY"})),
        CLIENT,
        "requires container 'side' to have a health check",
    )
    .await;
    let healthy = set(
        dep(json!({"containerName": "side", "condition": "HEALTHY"})),
        "/containerDefinitions/1/healthCheck",
        json!({"command": ["CMD", "true"]}),
    );
    accept(healthy).await;
    let essential_side = set(
        dep(json!({"containerName": "side", "condition": "SUCCESS"})),
        "/containerDefinitions/1/essential",
        json!(true),
    );
    expect(
        essential_side,
        CLIENT,
        "cannot be set on essential container 'side'",
    )
    .await;
    let cycle = set(
        dep(json!({"containerName": "side", "condition": "START"})),
        "/containerDefinitions/1/dependsOn",
        json!([{"containerName": "app", "condition": "START"}]),
    );
    expect(cycle, CLIENT, "Circular container dependency").await;
}

#[tokio::test]
async fn essential_rule() {
    expect(
        set(two(), "/containerDefinitions/0/essential", json!(false)),
        CLIENT,
        "at least one essential container",
    )
    .await;
}

#[tokio::test]
async fn volume_rules() {
    let vols = |v: Value| set(two(), "/volumes", v);
    expect(
        vols(json!([{"name": "d"}, {"name": "d"}])),
        CLIENT,
        "Duplicate volume name 'd'",
    )
    .await;
    expect(
        vols(json!([{"host": {}}])),
        CLIENT,
        "Volume.name should not be null or empty.",
    )
    .await;
    expect(
        vols(json!([{"name": "a/b"}])),
        CLIENT,
        "Invalid volume name",
    )
    .await;
    expect(
        vols(
            json!([{"name": "d", "host": {}, "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]),
        ),
        CLIENT,
        "Specify only one",
    )
    .await;
    expect(
        vols(json!([{"name": "d", "efsVolumeConfiguration": {}}])),
        CLIENT,
        "fileSystemId is required",
    )
    .await;
    expect(
        vols(json!([{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": {"iam": "ENABLED"}}}])),
        CLIENT,
        "Transit encryption must be enabled",
    )
    .await;
    expect(
        vols(json!([{"name": "d", "dockerVolumeConfiguration": {"scope": "task", "autoprovision": true}}])),
        CLIENT,
        "autoprovision can only be true",
    )
    .await;
    expect(
        vols(json!([{"name": "d", "dockerVolumeConfiguration": {"scope": "global"}}])),
        INVALID,
        "scope",
    )
    .await;
    let mount = set(
        two(),
        "/containerDefinitions/0/mountPoints",
        json!([{"sourceVolume": "nope", "containerPath": "/x"}]),
    );
    expect(
        mount.clone(),
        CLIENT,
        "The source volume 'nope' is not defined",
    )
    .await;
    accept(set(mount, "/volumes", json!([{"name": "nope"}]))).await;
    let from = set(
        two(),
        "/containerDefinitions/0/volumesFrom",
        json!([{"sourceContainer": "ghost"}]),
    );
    expect(from, CLIENT, "'ghost' is not another container").await;
}

#[tokio::test]
async fn secret_and_environment_rules() {
    let secrets = |s: Value| set(two(), "/containerDefinitions/0/secrets", s);
    expect(
        secrets(json!([{"name": "A", "valueFrom": "/p"}])),
        CLIENT,
        "you must also specify a value for 'executionRoleArn'",
    )
    .await;
    let with_role = |b: Value| {
        set(
            b,
            "/executionRoleArn",
            json!("arn:aws:iam::123456789012:role/exec"),
        )
    };
    accept(with_role(secrets(
        json!([{"name": "A", "valueFrom": "/p"}]),
    )))
    .await;
    expect(
        with_role(secrets(json!([{"name": "A"}]))),
        CLIENT,
        "valueFrom should not be null or empty",
    )
    .await;
    expect(
        with_role(secrets(json!([{"valueFrom": "/p"}]))),
        CLIENT,
        "Secret names should not be null or empty",
    )
    .await;
    expect(
        set(
            two(),
            "/containerDefinitions/0/environment",
            json!([{"value": "x"}]),
        ),
        CLIENT,
        "Environment variable names should not be null or empty.",
    )
    .await;
    expect(
        set(
            two(),
            "/containerDefinitions/0/environmentFiles",
            json!([{"value": "arn:aws:s3:::b/f", "type": "http"}]),
        ),
        INVALID,
        "environmentFiles.type",
    )
    .await;
}

#[tokio::test]
async fn health_check_rules() {
    let hc = |h: Value| set(two(), "/containerDefinitions/0/healthCheck", h);
    expect(
        hc(json!({"command": []})),
        CLIENT,
        "command should not be null or empty",
    )
    .await;
    expect(hc(json!({})), CLIENT, "command should not be null or empty").await;
    for (field, bad, good) in [
        ("interval", 4, 300),
        ("timeout", 61, 2),
        ("retries", 0, 10),
        ("startPeriod", 301, 0),
    ] {
        expect(
            hc(json!({"command": ["CMD", "true"], field: bad})),
            CLIENT,
            field,
        )
        .await;
        accept(hc(json!({"command": ["CMD", "true"], field: good}))).await;
    }
}

#[tokio::test]
async fn other_container_rules() {
    let c0 = |field: &str, v: Value| set(two(), &format!("/containerDefinitions/0/{field}"), v);
    expect(
        c0(
            "ulimits",
            json!([{"name": "files", "softLimit": 1, "hardLimit": 1}]),
        ),
        INVALID,
        "ulimits.name",
    )
    .await;
    expect(
        c0(
            "ulimits",
            json!([{"name": "nofile", "softLimit": 2, "hardLimit": 1}]),
        ),
        CLIENT,
        "softLimit must be less",
    )
    .await;
    expect(
        c0("ulimits", json!([{"name": "nofile"}])),
        CLIENT,
        "softLimit and hardLimit are required",
    )
    .await;
    expect(
        c0("logConfiguration", json!({"logDriver": "bogus"})),
        INVALID,
        "Invalid value 'bogus' for logConfiguration.logDriver",
    )
    .await;
    expect(
        c0("logConfiguration", json!({})),
        CLIENT,
        "logDriver should not be null or empty",
    )
    .await;
    expect(
        c0("logConfiguration", json!({"logDriver": "awsfirelens"})),
        CLIENT,
        "requires a container with a firelensConfiguration",
    )
    .await;
    expect(
        c0("restartPolicy", json!({"restartAttemptPeriod": 100})),
        CLIENT,
        "'enabled' is required",
    )
    .await;
    expect(
        c0(
            "restartPolicy",
            json!({"enabled": true, "restartAttemptPeriod": 10}),
        ),
        CLIENT,
        "restartAttemptPeriod",
    )
    .await;
    expect(
        c0("versionConsistency", json!("sometimes")),
        INVALID,
        "versionConsistency",
    )
    .await;
    expect(
        c0(
            "linuxParameters",
            json!({"capabilities": {"add": ["GODMODE"]}}),
        ),
        INVALID,
        "linuxParameters.capabilities",
    )
    .await;
    expect(
        c0("linuxParameters", json!({"swappiness": 101})),
        CLIENT,
        "swappiness",
    )
    .await;
    expect(
        c0(
            "resourceRequirements",
            json!([{"type": "GPU", "value": "zero"}]),
        ),
        CLIENT,
        "GPU value",
    )
    .await;
    expect(
        c0(
            "resourceRequirements",
            json!([{"type": "InferenceAccelerator", "value": "eia"}]),
        ),
        CLIENT,
        "'eia' is not defined",
    )
    .await;
    expect(c0("stopTimeout", json!(-5)), CLIENT, "stopTimeout").await;
    expect(
        c0("firelensConfiguration", json!({"type": "logstash"})),
        INVALID,
        "firelensConfiguration.type",
    )
    .await;
}

#[tokio::test]
async fn task_level_rules() {
    expect(
        set(two(), "/requiresCompatibilities", json!(["MARS"])),
        INVALID,
        "requiresCompatibilities",
    )
    .await;
    expect(
        set(two(), "/pidMode", json!("container")),
        INVALID,
        "pidMode",
    )
    .await;
    expect(set(two(), "/ipcMode", json!("shared")), INVALID, "ipcMode").await;
    let many: Vec<Value> = (0..11)
        .map(|i| json!({"type": "memberOf", "expression": format!("attribute:n == {i}")}))
        .collect();
    expect(
        set(two(), "/placementConstraints", json!(many)),
        CLIENT,
        "Too many placement constraints",
    )
    .await;
    expect(
        set(
            two(),
            "/placementConstraints",
            json!([{"type": "distinctInstance"}]),
        ),
        CLIENT,
        "support only 'memberOf'",
    )
    .await;
    expect(
        set(
            two(),
            "/placementConstraints",
            json!([{"type": "memberOf"}]),
        ),
        CLIENT,
        "expression is required",
    )
    .await;
    for bad in [20, 201] {
        expect(
            set(two(), "/ephemeralStorage", json!({"sizeInGiB": bad})),
            CLIENT,
            "between 21 GiB and 200 GiB",
        )
        .await;
    }
    accept(set(two(), "/ephemeralStorage", json!({"sizeInGiB": 21}))).await;
    expect(
        set(
            two(),
            "/runtimePlatform",
            json!({"cpuArchitecture": "MIPS"}),
        ),
        INVALID,
        "cpuArchitecture",
    )
    .await;
    expect(
        set(two(), "/tags", json!([{"key": "aws:x", "value": "y"}])),
        INVALID,
        "reserved",
    )
    .await;
    let proxy = json!({"type": "APPMESH", "containerName": "side"});
    expect(
        set(two(), "/proxyConfiguration", proxy.clone()),
        CLIENT,
        "requires network mode 'awsvpc'",
    )
    .await;
    expect(
        set(
            two(),
            "/proxyConfiguration",
            json!({"containerName": "ghost"}),
        ),
        CLIENT,
        "'ghost' is not defined",
    )
    .await;
    expect(
        set(
            two(),
            "/inferenceAccelerators",
            json!([{"deviceName": "a"}]),
        ),
        CLIENT,
        "deviceName and a deviceType",
    )
    .await;
}

#[tokio::test]
async fn wrong_json_types_are_serialization_errors() {
    for (pointer, value) in [
        ("/containerDefinitions", json!("app")),
        ("/containerDefinitions/0", json!(["app", "nginx"])),
        ("/containerDefinitions/0/memory", json!("256")),
        ("/containerDefinitions/0/memory", json!(1.5)),
        ("/containerDefinitions/0/memory", json!(4_000_000_000u64)),
        ("/containerDefinitions/0/essential", json!("yes")),
        ("/containerDefinitions/0/portMappings", json!([[80]])),
        (
            "/containerDefinitions/0/portMappings",
            json!({"containerPort": 80}),
        ),
        ("/containerDefinitions/0/dockerLabels", json!({"a": 1})),
        (
            "/containerDefinitions/0/linuxParameters",
            json!({"capabilities": [["NET_ADMIN"]]}),
        ),
        ("/containerDefinitions/0/command", json!("run")),
        ("/cpu", json!(256)),
        ("/tags", json!("env=prod")),
        ("/volumes", json!([{"name": 5}])),
        ("/family", json!(["v"])),
    ] {
        expect(set(two(), pointer, value), SERIAL, "").await;
    }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..70_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "", "app", "side", "tcp", "udp", "START", "HEALTHY", "awslogs", "nofile", "80-90",
            "host", "s3", "GPU", "1"
        ])
        .prop_map(Value::from),
        "[a-z:/ -]{0,8}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(member_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "name",
            "image",
            "cpu",
            "memory",
            "memoryReservation",
            "links",
            "portMappings",
            "containerPort",
            "hostPort",
            "protocol",
            "containerPortRange",
            "essential",
            "dependsOn",
            "containerName",
            "condition",
            "healthCheck",
            "command",
            "interval",
            "ulimits",
            "softLimit",
            "hardLimit",
            "logConfiguration",
            "logDriver",
            "secrets",
            "valueFrom",
            "mountPoints",
            "sourceVolume",
            "volumesFrom",
            "sourceContainer",
            "linuxParameters",
            "capabilities",
            "add",
            "restartPolicy",
            "enabled",
            "firelensConfiguration",
            "type",
            "value",
        ])
        .prop_map(String::from),
        "[a-zA-Z]{1,6}",
    ]
}

fn container() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(member_name(), json_value(), 0..8),
        prop::option::of(json_value()),
    )
        .prop_map(|(m, extra)| {
            let mut c: Map<String, Value> = m.into_iter().collect();
            // Most cases get past the first checks so the later ones run too.
            c.entry("name").or_insert_with(|| json!("app"));
            c.entry("image").or_insert_with(|| json!("nginx"));
            if let Some(e) = extra {
                c.insert("x".into(), e);
            }
            Value::Object(c)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_container_definitions_never_panic(
        containers in prop::collection::vec(container(), 0..3),
        mode in prop::option::of(prop::sample::select(vec!["bridge", "awsvpc", "host", "none", "x"])),
        cpu in prop::option::of(prop::sample::select(vec!["256", "1 vCPU", "", "512"])),
        memory in prop::option::of(prop::sample::select(vec!["512", "1 GB", "x", "2048"])),
        fargate in any::<bool>(),
        volumes in prop::option::of(json_value()),
    ) {
        let mut body = json!({"family": "p", "containerDefinitions": containers});
        if let Some(m) = mode { body["networkMode"] = json!(m); }
        if let Some(c) = cpu { body["cpu"] = json!(c); }
        if let Some(m) = memory { body["memory"] = json!(m); }
        if fargate { body["requiresCompatibilities"] = json!(["FARGATE"]); }
        if let Some(v) = volumes { body["volumes"] = v; }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let store = new_store();
        let result = rt.block_on(async {
            let r = reg(store.as_ref(), body.clone()).await;
            if let Ok(registered) = &r {
                // Whatever was accepted describes back as registered.
                let d = desc(store.as_ref(), "p:1").await.unwrap();
                prop_assert_eq!(&d["taskDefinition"], &registered["taskDefinition"]);
            }
            Ok(r)
        })?;
        if let Err(e) = result {
            prop_assert!(matches!(e, EcsError::Client(_) | EcsError::InvalidParameter(_) | EcsError::Serialization(_)), "{e:?}");
        }
    }
}
