//! Registration: what is stored, what is added, what is computed.

use super::*;

/// Merge of several objects (one `json!` this size exceeds the macro
/// recursion limit).
fn merged(parts: Vec<Value>) -> Value {
    let mut out = Map::new();
    for p in parts {
        out.extend(obj(p));
    }
    Value::Object(out)
}

fn rich_app() -> Value {
    merged(vec![
        json!({
            "name": "app",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:0123456789abcdef",
            "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:123456789012:secret:creds"},
            "cpu": 256,
            "memory": 1024,
            "memoryReservation": 512,
            "links": ["sidecar:side"],
            "portMappings": [
                {"containerPort": 8080, "hostPort": 0, "protocol": "tcp", "name": "http", "appProtocol": "http"},
                {"containerPortRange": "9000-9010", "protocol": "udp"}
            ],
            "essential": true,
            "restartPolicy": {"enabled": true, "ignoredExitCodes": [0, 143], "restartAttemptPeriod": 300},
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["exec app --port 8080"],
            "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
            "environmentFiles": [{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}],
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": false}],
            "volumesFrom": [{"sourceContainer": "sidecar", "readOnly": true}],
            "linuxParameters": {
                "capabilities": {"add": ["NET_ADMIN", "SYS_PTRACE"], "drop": ["MKNOD"]},
                "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse", "permissions": ["read", "write", "mknod"]}],
                "initProcessEnabled": true,
                "sharedMemorySize": 64,
                "tmpfs": [{"containerPath": "/tmp", "size": 128, "mountOptions": ["rw", "noexec"]}],
                "maxSwap": 1024,
                "swappiness": 60
            },
            "secrets": [
                {"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"},
                {"name": "API_KEY", "valueFrom": "/app/api-key"}
            ]
        }),
        json!({
            "dependsOn": [{"containerName": "sidecar", "condition": "START"}],
            "startTimeout": 120,
            "stopTimeout": 60,
            "versionConsistency": "disabled",
            "hostname": "app-host",
            "user": "1000:1000",
            "workingDirectory": "/srv",
            "disableNetworking": false,
            "privileged": false,
            "readonlyRootFilesystem": true,
            "dnsServers": ["10.0.0.2"],
            "dnsSearchDomains": ["example.internal"],
            "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.5"}],
            "dockerSecurityOptions": ["no-new-privileges"],
            "interactive": false,
            "pseudoTerminal": false,
            "dockerLabels": {"team": "core", "tier": "web"},
            "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ecs/app", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app"},
                "secretOptions": [{"name": "token", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/log-token"}]
            },
            "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"], "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 10},
            "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
            "resourceRequirements": [{"value": "eia-1", "type": "InferenceAccelerator"}],
            "credentialSpecs": ["credentialspecdomainless:arn:aws:s3:::bucket/spec.json"],
            "futureMember": {"nested": [1, {"deep": true}]}
        }),
    ])
}

fn rich_body() -> Value {
    json!({
        "family": "rich",
        "taskRoleArn": "arn:aws:iam::123456789012:role/task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "networkMode": "bridge",
        "containerDefinitions": [
            rich_app(),
            {
                "name": "sidecar",
                "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
                "memoryReservation": 64,
                "essential": false,
                "firelensConfiguration": {"type": "fluentbit", "options": {"config-file-type": "file", "config-file-value": "/extra.conf"}}
            }
        ],
        "volumes": [
            {"name": "data", "host": {"sourcePath": "/mnt/data"}},
            {"name": "scratch", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local", "driverOpts": {"type": "tmpfs"}, "labels": {"a": "b"}}},
            {"name": "shared", "efsVolumeConfiguration": {"fileSystemId": "fs-1234", "rootDirectory": "/", "transitEncryption": "ENABLED", "transitEncryptionPort": 2049, "authorizationConfig": {"accessPointId": "fsap-1", "iam": "ENABLED"}}}
        ],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}],
        "requiresCompatibilities": ["EC2"],
        "cpu": "1 vCPU",
        "memory": "2 GB",
        "pidMode": "task",
        "ipcMode": "none",
        "inferenceAccelerators": [{"deviceName": "eia-1", "deviceType": "eia2.medium"}],
        "ephemeralStorage": {"sizeInGiB": 30},
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "enableFaultInjection": true,
        "tags": [{"key": "env", "value": "prod"}]
    })
}

#[tokio::test]
async fn a_rich_definition_round_trips_member_for_member() {
    let s = new_store();
    let body = rich_body();
    let registered = reg(s.as_ref(), body.clone()).await.unwrap();
    let described = desc(s.as_ref(), "rich:1").await.unwrap()["taskDefinition"].clone();
    assert_eq!(registered["taskDefinition"], described);

    let input_app = rich_app();
    let app = &described["containerDefinitions"][0];
    for (k, v) in input_app.as_object().unwrap() {
        assert_eq!(&app[k], v, "container member {k}");
    }
    assert_eq!(
        app.as_object().unwrap().len(),
        input_app.as_object().unwrap().len(),
        "nothing added to a full container"
    );
    let side = &described["containerDefinitions"][1];
    for (k, v) in body["containerDefinitions"][1].as_object().unwrap() {
        assert_eq!(&side[k], v, "sidecar member {k}");
    }
    for k in [
        "taskRoleArn",
        "executionRoleArn",
        "networkMode",
        "volumes",
        "placementConstraints",
        "requiresCompatibilities",
        "pidMode",
        "ipcMode",
        "inferenceAccelerators",
        "ephemeralStorage",
        "runtimePlatform",
        "enableFaultInjection",
    ] {
        assert_eq!(described[k], body[k], "task member {k}");
    }
    assert_eq!(described["cpu"], "1024");
    assert_eq!(described["memory"], "2048");
    assert_eq!(registered["tags"], json!([{"key": "env", "value": "prod"}]));
    assert!(described.get("tags").is_none());
    // Known members are written in ECS's order, unknown ones after them.
    let keys: Vec<&String> = app.as_object().unwrap().keys().collect();
    assert_eq!(keys.first().map(|k| k.as_str()), Some("name"));
    assert_eq!(keys.last().map(|k| k.as_str()), Some("futureMember"));
}

#[tokio::test]
async fn rich_definition_requires_the_attributes_of_its_features() {
    let s = new_store();
    let td = reg_ok(s.as_ref(), rich_body()).await;
    let names: Vec<&str> = td["requiresAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for expected in [
        "com.amazonaws.ecs.capability.task-iam-role",
        "com.amazonaws.ecs.capability.ecr-auth",
        "ecs.capability.execution-role-ecr-pull",
        "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager",
        "com.amazonaws.ecs.capability.logging-driver.awslogs",
        "com.amazonaws.ecs.capability.docker-remote-api.1.18",
        "com.amazonaws.ecs.capability.docker-remote-api.1.19",
        "ecs.capability.execution-role-awslogs",
        "ecs.capability.secrets.ssm.bootstrap.log-driver",
        "ecs.capability.secrets.asm.environment-variables",
        "ecs.capability.secrets.ssm.environment-variables",
        "ecs.capability.container-health-check",
        "ecs.capability.container-ordering",
        "ecs.capability.env-files.s3",
        "ecs.capability.firelens.fluentbit",
        "ecs.capability.firelens.options.config.file",
        "ecs.capability.efs",
        "ecs.capability.efsAuth",
    ] {
        assert!(names.contains(&expected), "missing {expected} in {names:?}");
    }
    assert!(!names.contains(&"ecs.capability.task-eni"));
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    // EFS rules out ECS Anywhere; bridge mode rules out Fargate.
    assert_eq!(td["compatibilities"], json!(["EC2"]));
}

#[tokio::test]
async fn ecs_defaults_are_added() {
    let s = new_store();
    let out = reg(s.as_ref(), basic("web")).await.unwrap();
    let td = &out["taskDefinition"];
    assert_eq!(
        td["containerDefinitions"][0],
        json!({
            "name": "app", "image": "nginx", "cpu": 0, "memory": 128, "portMappings": [], "essential": true,
            "environment": [], "mountPoints": [], "volumesFrom": [], "systemControls": []
        })
    );
    assert_eq!(td["taskDefinitionArn"], arn("web:1"));
    assert_eq!(td["family"], "web");
    assert_eq!(td["revision"], 1);
    assert_eq!(td["status"], "ACTIVE");
    assert_eq!(td["volumes"], json!([]));
    assert_eq!(td["placementConstraints"], json!([]));
    assert_eq!(td["requiresAttributes"], json!([]));
    assert_eq!(td["compatibilities"], json!(["EXTERNAL", "EC2"]));
    assert_eq!(td["registeredAt"], json!(1_700_000_000.5));
    assert_eq!(td["registeredBy"], "arn:aws:iam::123456789012:root");
    for absent in [
        "networkMode",
        "cpu",
        "memory",
        "requiresCompatibilities",
        "taskRoleArn",
        "deregisteredAt",
        "pidMode",
    ] {
        assert!(td.get(absent).is_none(), "{absent} should be absent");
    }
    assert_eq!(out["tags"], json!([]));
}

#[tokio::test]
async fn null_members_count_as_absent() {
    let s = new_store();
    let body = json!({"family": "n", "taskRoleArn": null, "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 128, "cpu": null, "links": null}]});
    let td = reg_ok(s.as_ref(), body).await;
    assert_eq!(td["containerDefinitions"][0]["cpu"], 0);
    assert!(td["containerDefinitions"][0].get("links").is_none());
    assert!(td.get("taskRoleArn").is_none());
}

fn with_ports(mode: Option<&str>, mappings: Value) -> Value {
    let mut b = json!({"family": "p", "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 128, "portMappings": mappings}]});
    if let Some(m) = mode {
        b["networkMode"] = json!(m);
    }
    b
}

#[tokio::test]
async fn port_mapping_defaults_follow_the_network_mode() {
    let s = new_store();
    let m = json!([{"containerPort": 80}, {"containerPort": 53, "protocol": "udp"}]);
    for mode in [None, Some("bridge")] {
        let td = reg_ok(s.as_ref(), with_ports(mode, m.clone())).await;
        assert_eq!(
            td["containerDefinitions"][0]["portMappings"],
            json!([{"containerPort": 80, "protocol": "tcp"}, {"containerPort": 53, "protocol": "udp"}]),
            "{mode:?}"
        );
    }
    for mode in ["awsvpc", "host"] {
        let td = reg_ok(s.as_ref(), with_ports(Some(mode), m.clone())).await;
        assert_eq!(
            td["containerDefinitions"][0]["portMappings"],
            json!([{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}, {"containerPort": 53, "hostPort": 53, "protocol": "udp"}]),
            "{mode}"
        );
    }
    let td = reg_ok(
        s.as_ref(),
        with_ports(
            Some("bridge"),
            json!([{"containerPort": 80, "hostPort": 8080}]),
        ),
    )
    .await;
    assert_eq!(
        td["containerDefinitions"][0]["portMappings"][0]["hostPort"],
        8080
    );
}

pub(super) fn fargate_body(family: &str) -> Value {
    json!({
        "family": family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "0.25 vCPU",
        "memory": "0.5 GB",
        "taskRoleArn": "arn:aws:iam::123456789012:role/task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "containerDefinitions": [{
            "name": "web",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1",
            "portMappings": [{"containerPort": 80}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}}
        }]
    })
}

#[tokio::test]
async fn fargate_definitions_are_sized_and_compatible() {
    let s = new_store();
    let td = reg_ok(s.as_ref(), fargate_body("f")).await;
    assert_eq!(td["cpu"], "256");
    assert_eq!(td["memory"], "512");
    assert_eq!(td["compatibilities"], json!(["EC2", "FARGATE"]));
    assert_eq!(td["requiresCompatibilities"], json!(["FARGATE"]));
    assert_eq!(td["networkMode"], "awsvpc");
    let names: Vec<&str> = td["requiresAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for expected in [
        "ecs.capability.task-eni",
        "com.amazonaws.ecs.capability.task-iam-role",
        "com.amazonaws.ecs.capability.ecr-auth",
        "ecs.capability.execution-role-ecr-pull",
        "ecs.capability.execution-role-awslogs",
        "com.amazonaws.ecs.capability.logging-driver.awslogs",
    ] {
        assert!(names.contains(&expected), "missing {expected}");
    }
}

#[tokio::test]
async fn fargate_compatibility_is_computed_without_being_required() {
    let s = new_store();
    let mut b = fargate_body("g");
    b.as_object_mut().unwrap().remove("requiresCompatibilities");
    let td = reg_ok(s.as_ref(), b.clone()).await;
    assert_eq!(td["compatibilities"], json!(["EC2", "FARGATE"]));
    assert!(td.get("requiresCompatibilities").is_none());
    // A privileged container keeps it off Fargate but is fine on EC2.
    b["containerDefinitions"][0]["privileged"] = json!(true);
    let td = reg_ok(s.as_ref(), b).await;
    assert_eq!(td["compatibilities"], json!(["EC2"]));
}

#[tokio::test]
async fn managed_instances_are_listed_when_required() {
    let s = new_store();
    let mut b = fargate_body("mi");
    b["requiresCompatibilities"] = json!(["FARGATE", "MANAGED_INSTANCES"]);
    let td = reg_ok(s.as_ref(), b).await;
    assert_eq!(
        td["compatibilities"],
        json!(["EC2", "FARGATE", "MANAGED_INSTANCES"])
    );
}

#[tokio::test]
async fn awsvpc_only_members_round_trip() {
    let s = new_store();
    let body = json!({
        "family": "mesh",
        "networkMode": "awsvpc",
        "memory": "1024",
        "containerDefinitions": [
            {"name": "app", "image": "app", "portMappings": [{"containerPort": 9080, "hostPort": 9080, "protocol": "tcp"}]},
            {"name": "envoy", "image": "envoy", "user": "1337", "essential": true}
        ],
        "proxyConfiguration": {"type": "APPMESH", "containerName": "envoy", "properties": [{"name": "IgnoredUID", "value": "1337"}, {"name": "ProxyIngressPort", "value": "15000"}]}
    });
    let td = reg_ok(s.as_ref(), body.clone()).await;
    assert_eq!(td["proxyConfiguration"], body["proxyConfiguration"]);
    assert_eq!(td["memory"], "1024");
    assert!(
        td["requiresAttributes"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "ecs.capability.aws-appmesh"}))
    );
    // Task memory alone satisfies the memory requirement; no cpu means no Fargate.
    assert_eq!(td["compatibilities"], json!(["EC2"]));
}
