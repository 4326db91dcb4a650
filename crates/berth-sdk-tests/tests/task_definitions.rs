//! Task definitions through aws-sdk-ecs, against ECS's documented
//! behaviour: a rich definition round-trips member for member, revisions
//! count up per family and are never reused, references by family,
//! family:revision and ARN, deregistration, deletion, and both list
//! operations with their filters and pagination.

mod common;

use aws_sdk_ecs::types::{
    ApplicationProtocol, Compatibility, ContainerCondition, ContainerDefinition,
    ContainerDependency, DockerVolumeConfiguration, EnvironmentFile, EnvironmentFileType,
    HealthCheck, HostEntry, HostVolumeProperties, KernelCapabilities, KeyValuePair,
    LinuxParameters, LogConfiguration, LogDriver, MountPoint, NetworkMode, PortMapping, Scope,
    Secret, SortOrder, SystemControl, Tag, TaskDefinition, TaskDefinitionFamilyStatus,
    TaskDefinitionField, TaskDefinitionPlacementConstraint, TaskDefinitionPlacementConstraintType,
    TaskDefinitionStatus, Tmpfs, TransportProtocol, Ulimit, UlimitName, Volume, VolumeFrom,
};
use common::{BerthServer, error_code, unique};
use std::collections::BTreeSet;

fn kv(name: &str, value: &str) -> KeyValuePair {
    KeyValuePair::builder().name(name).value(value).build()
}

fn simple(name: &str) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name(name)
        .image("public.ecr.aws/nginx/nginx:latest")
        .memory(128)
        .build()
}

async fn register(ecs: &aws_sdk_ecs::Client, family: &str) -> TaskDefinition {
    ecs.register_task_definition()
        .family(family)
        .container_definitions(simple("app"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("RegisterTaskDefinition {family}: {e:?}"))
        .task_definition()
        .cloned()
        .expect("taskDefinition in the output")
}

fn rich_containers(account: &str) -> Vec<ContainerDefinition> {
    let app = ContainerDefinition::builder()
        .name("app")
        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2.3")
        .cpu(256)
        .memory(512)
        .memory_reservation(256)
        .links("sidecar")
        .port_mappings(
            PortMapping::builder()
                .container_port(8080)
                .host_port(80)
                .protocol(TransportProtocol::Tcp)
                .name("http")
                .app_protocol(ApplicationProtocol::Http)
                .build(),
        )
        .port_mappings(
            PortMapping::builder()
                .container_port(9090)
                .host_port(9090)
                .protocol(TransportProtocol::Udp)
                .build(),
        )
        .essential(true)
        .entry_point("/bin/sh")
        .entry_point("-c")
        .command("exec /app/server --port 8080")
        .environment(kv("MODE", "production"))
        .environment(kv("EMPTY_LOOKING", ""))
        .environment(kv("UNICODE", "ünïcødé ✓"))
        .environment_files(
            EnvironmentFile::builder()
                .value("arn:aws:s3:::my-bucket/app.env")
                .r#type(EnvironmentFileType::S3)
                .build()
                .expect("environment file"),
        )
        .mount_points(
            MountPoint::builder()
                .source_volume("data")
                .container_path("/data")
                .read_only(false)
                .build(),
        )
        .mount_points(
            MountPoint::builder()
                .source_volume("scratch")
                .container_path("/scratch")
                .read_only(true)
                .build(),
        )
        .volumes_from(
            VolumeFrom::builder()
                .source_container("sidecar")
                .read_only(true)
                .build(),
        )
        .linux_parameters(
            LinuxParameters::builder()
                .capabilities(
                    KernelCapabilities::builder()
                        .add("NET_ADMIN")
                        .add("SYS_PTRACE")
                        .drop("MKNOD")
                        .build(),
                )
                .init_process_enabled(true)
                .shared_memory_size(64)
                .tmpfs(
                    Tmpfs::builder()
                        .container_path("/run/tmp")
                        .size(32)
                        .mount_options("rw")
                        .mount_options("noexec")
                        .build()
                        .expect("tmpfs"),
                )
                .max_swap(1024)
                .swappiness(10)
                .build(),
        )
        .secrets(
            Secret::builder()
                .name("DB_PASSWORD")
                .value_from(format!(
                    "arn:aws:ssm:us-east-1:{account}:parameter/db/password"
                ))
                .build()
                .expect("secret"),
        )
        .secrets(
            Secret::builder()
                .name("API_KEY")
                .value_from(format!(
                    "arn:aws:secretsmanager:us-east-1:{account}:secret:api-key-AbCdEf"
                ))
                .build()
                .expect("secret"),
        )
        .depends_on(
            ContainerDependency::builder()
                .container_name("sidecar")
                .condition(ContainerCondition::Healthy)
                .build()
                .expect("dependency"),
        )
        .start_timeout(60)
        .stop_timeout(30)
        .hostname("app-host")
        .user("1000:1000")
        .working_directory("/app")
        .disable_networking(false)
        .privileged(false)
        .readonly_root_filesystem(true)
        .dns_servers("10.0.0.2")
        .dns_search_domains("internal.example")
        .extra_hosts(
            HostEntry::builder()
                .hostname("db.internal")
                .ip_address("10.0.0.10")
                .build()
                .expect("host entry"),
        )
        .docker_security_options("no-new-privileges")
        .interactive(false)
        .pseudo_terminal(false)
        .docker_labels("com.example.team", "platform")
        .docker_labels("com.example.tier", "web")
        .ulimits(
            Ulimit::builder()
                .name(UlimitName::Nofile)
                .soft_limit(65536)
                .hard_limit(65536)
                .build()
                .expect("ulimit"),
        )
        .ulimits(
            Ulimit::builder()
                .name(UlimitName::Core)
                .soft_limit(0)
                .hard_limit(0)
                .build()
                .expect("ulimit"),
        )
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", "/ecs/app")
                .options("awslogs-region", "us-east-1")
                .options("awslogs-stream-prefix", "app")
                .build()
                .expect("log configuration"),
        )
        .health_check(
            HealthCheck::builder()
                .command("CMD-SHELL")
                .command("curl -f http://localhost:8080/health || exit 1")
                .interval(15)
                .timeout(5)
                .retries(4)
                .start_period(20)
                .build()
                .expect("health check"),
        )
        .system_controls(
            SystemControl::builder()
                .namespace("net.core.somaxconn")
                .value("1024")
                .build(),
        )
        .build();
    let sidecar = ContainerDefinition::builder()
        .name("sidecar")
        .image("busybox:1.36")
        .cpu(128)
        .memory(128)
        .essential(false)
        .command("sleep")
        .command("infinity")
        .environment(kv("ROLE", "sidecar"))
        .mount_points(
            MountPoint::builder()
                .source_volume("data")
                .container_path("/shared")
                .read_only(true)
                .build(),
        )
        .health_check(
            HealthCheck::builder()
                .command("CMD")
                .command("true")
                .interval(30)
                .timeout(5)
                .retries(3)
                .start_period(0)
                .build()
                .expect("health check"),
        )
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::JsonFile)
                .options("max-size", "10m")
                .build()
                .expect("log configuration"),
        )
        .build();
    vec![app, sidecar]
}

fn rich_volumes() -> Vec<Volume> {
    vec![
        Volume::builder()
            .name("data")
            .host(
                HostVolumeProperties::builder()
                    .source_path("/srv/data")
                    .build(),
            )
            .build(),
        Volume::builder()
            .name("scratch")
            .docker_volume_configuration(
                DockerVolumeConfiguration::builder()
                    .scope(Scope::Shared)
                    .autoprovision(true)
                    .driver("local")
                    .driver_opts("type", "tmpfs")
                    .driver_opts("device", "tmpfs")
                    .labels("purpose", "scratch")
                    .build(),
            )
            .build(),
    ]
}

/// Every member the test set on `want` comes back the same on `got`. The
/// accessors treat an absent list and an empty one alike, so the defaults
/// ECS adds for members the request left out (empty `volumesFrom`,
/// `systemControls`, ...) do not count as differences; `essential` and
/// `cpu` are compared as ECS defaults them.
fn assert_container_round_trips(got: &ContainerDefinition, want: &ContainerDefinition) {
    macro_rules! same {
        ($($field:ident),* $(,)?) => {
            $(assert_eq!(got.$field(), want.$field(), "container {:?}: member {}", want.name(), stringify!($field));)*
        };
    }
    same!(
        name,
        image,
        cpu,
        memory,
        memory_reservation,
        links,
        port_mappings,
        essential,
        entry_point,
        command,
        environment,
        environment_files,
        mount_points,
        volumes_from,
        linux_parameters,
        secrets,
        depends_on,
        start_timeout,
        stop_timeout,
        hostname,
        user,
        working_directory,
        disable_networking,
        privileged,
        readonly_root_filesystem,
        dns_servers,
        dns_search_domains,
        extra_hosts,
        docker_security_options,
        interactive,
        pseudo_terminal,
        docker_labels,
        ulimits,
        log_configuration,
        health_check,
        system_controls,
    );
}

#[tokio::test]
async fn rich_definition_round_trips() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let account = server.creds.account_id.clone();
    let family = unique("rich");
    let containers = rich_containers(&account);
    let volumes = rich_volumes();
    let task_role = format!("arn:aws:iam::{account}:role/app-task");
    let exec_role = format!("arn:aws:iam::{account}:role/ecsTaskExecutionRole");
    let constraint = TaskDefinitionPlacementConstraint::builder()
        .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
        .expression("attribute:ecs.instance-type =~ t3.*")
        .build();

    let out = ecs
        .register_task_definition()
        .family(&family)
        .task_role_arn(&task_role)
        .execution_role_arn(&exec_role)
        .network_mode(NetworkMode::Bridge)
        .set_container_definitions(Some(containers.clone()))
        .set_volumes(Some(volumes.clone()))
        .placement_constraints(constraint.clone())
        .requires_compatibilities(Compatibility::Ec2)
        .cpu("512")
        .memory("1024")
        .tags(Tag::builder().key("app").value("rich").build())
        .send()
        .await
        .expect("RegisterTaskDefinition (rich)");
    let registered = out.task_definition().expect("taskDefinition").clone();
    let arn = format!("arn:aws:ecs:us-east-1:{account}:task-definition/{family}:1");
    assert_eq!(registered.task_definition_arn(), Some(arn.as_str()));
    assert_eq!(out.tags().len(), 1);

    let described = ecs
        .describe_task_definition()
        .task_definition(&arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    let td = described.task_definition().expect("taskDefinition");
    assert_eq!(described.tags().len(), 1);
    assert_eq!(described.tags()[0].key(), Some("app"));

    for view in [&registered, td] {
        assert_eq!(view.family(), Some(family.as_str()));
        assert_eq!(view.revision(), 1);
        assert_eq!(view.status(), Some(&TaskDefinitionStatus::Active));
        assert_eq!(view.task_role_arn(), Some(task_role.as_str()));
        assert_eq!(view.execution_role_arn(), Some(exec_role.as_str()));
        assert_eq!(view.network_mode(), Some(&NetworkMode::Bridge));
        assert_eq!(view.cpu(), Some("512"));
        assert_eq!(view.memory(), Some("1024"));
        assert_eq!(view.requires_compatibilities(), [Compatibility::Ec2]);
        assert!(
            view.compatibilities().contains(&Compatibility::Ec2),
            "{:?}",
            view.compatibilities()
        );
        assert_eq!(view.volumes(), volumes.as_slice());
        assert_eq!(
            view.placement_constraints(),
            std::slice::from_ref(&constraint)
        );
        assert!(view.registered_at().is_some());
        assert_eq!(
            view.registered_by(),
            Some(format!("arn:aws:iam::{account}:root").as_str())
        );
        assert!(
            !view.requires_attributes().is_empty(),
            "awslogs, secrets, health checks... need agent capabilities"
        );
        assert_eq!(view.container_definitions().len(), containers.len());
        for (got, want) in view.container_definitions().iter().zip(&containers) {
            assert_container_round_trips(got, want);
        }
    }
}

#[tokio::test]
async fn ecs_defaults_are_filled_in() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let family = unique("defaults");
    let out = ecs
        .register_task_definition()
        .family(&family)
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image("nginx")
                .memory(128)
                .port_mappings(PortMapping::builder().container_port(80).build())
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let td = out.task_definition().expect("taskDefinition");
    let c = &td.container_definitions()[0];
    assert_eq!(c.essential(), Some(true), "essential defaults to true");
    assert_eq!(c.cpu(), 0);
    let pm = &c.port_mappings()[0];
    assert_eq!(
        pm.protocol(),
        Some(&TransportProtocol::Tcp),
        "protocol defaults to tcp"
    );
    assert_eq!(
        pm.host_port(),
        Some(80),
        "awsvpc: hostPort is the containerPort"
    );
}

#[tokio::test]
async fn revisions_references_and_deregistration() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let account = server.creds.account_id.clone();
    let family = unique("web");
    for want in 1..=3 {
        let td = register(&ecs, &family).await;
        assert_eq!(td.revision(), want);
        assert_eq!(
            td.task_definition_arn(),
            Some(
                format!("arn:aws:ecs:us-east-1:{account}:task-definition/{family}:{want}").as_str()
            )
        );
    }
    let arn = |rev: i32| format!("arn:aws:ecs:us-east-1:{account}:task-definition/{family}:{rev}");
    let describe = |reference: String| {
        let ecs = ecs.clone();
        async move {
            ecs.describe_task_definition()
                .task_definition(&reference)
                .send()
                .await
                .unwrap_or_else(|e| panic!("DescribeTaskDefinition {reference}: {e:?}"))
                .task_definition()
                .cloned()
                .expect("taskDefinition")
        }
    };

    // Family alone: the latest ACTIVE revision; family:rev and ARN: that one.
    assert_eq!(describe(family.clone()).await.revision(), 3);
    assert_eq!(describe(format!("{family}:2")).await.revision(), 2);
    assert_eq!(
        describe(arn(1)).await.task_definition_arn(),
        Some(arn(1).as_str())
    );

    // Deregister the latest: INACTIVE, still describable by revision, and
    // the family now means revision 2.
    let out = ecs
        .deregister_task_definition()
        .task_definition(format!("{family}:3"))
        .send()
        .await
        .expect("deregister");
    let td = out.task_definition().expect("taskDefinition");
    assert_eq!(td.status(), Some(&TaskDefinitionStatus::Inactive));
    assert!(td.deregistered_at().is_some());
    assert_eq!(
        describe(format!("{family}:3")).await.status(),
        Some(&TaskDefinitionStatus::Inactive)
    );
    assert_eq!(describe(family.clone()).await.revision(), 2);

    // Deregister by ARN.
    ecs.deregister_task_definition()
        .task_definition(arn(2))
        .send()
        .await
        .expect("deregister by ARN");
    assert_eq!(describe(family.clone()).await.revision(), 1);

    // A new registration never reuses a number.
    assert_eq!(register(&ecs, &family).await.revision(), 4);

    // Unknown references.
    for missing in [
        format!("{family}:99"),
        "no-such-family".to_string(),
        format!("arn:aws:ecs:us-east-1:{account}:task-definition/nope:1"),
    ] {
        let err = ecs
            .describe_task_definition()
            .task_definition(&missing)
            .send()
            .await
            .expect_err("unknown");
        assert_eq!(error_code(&err), "ClientException", "{missing}");
    }
    // Deregister needs a revision.
    let err = ecs
        .deregister_task_definition()
        .task_definition(&family)
        .send()
        .await
        .expect_err("no revision");
    assert!(
        ["ClientException", "InvalidParameterException"].contains(&error_code(&err).as_str()),
        "{err:?}"
    );
    let err = ecs
        .deregister_task_definition()
        .task_definition(format!("{family}:99"))
        .send()
        .await
        .expect_err("unknown");
    assert!(
        ["ClientException", "InvalidParameterException"].contains(&error_code(&err).as_str()),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_registrations_are_refused() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    // No containers.
    let err = ecs
        .register_task_definition()
        .family("empty")
        .send()
        .await
        .expect_err("no containers");
    assert!(
        ["ClientException", "InvalidParameterException"].contains(&error_code(&err).as_str()),
        "{err:?}"
    );
    // Invalid family name.
    let err = ecs
        .register_task_definition()
        .family("bad family!")
        .container_definitions(simple("app"))
        .send()
        .await
        .expect_err("invalid family");
    assert!(
        ["ClientException", "InvalidParameterException"].contains(&error_code(&err).as_str()),
        "{err:?}"
    );
    // A mount point naming a volume that does not exist.
    let err = ecs
        .register_task_definition()
        .family("dangling")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("nginx")
                .memory(128)
                .mount_points(
                    MountPoint::builder()
                        .source_volume("nope")
                        .container_path("/x")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect_err("unknown volume");
    assert!(
        ["ClientException", "InvalidParameterException"].contains(&error_code(&err).as_str()),
        "{err:?}"
    );
    // Duplicate container names.
    let err = ecs
        .register_task_definition()
        .family("dupes")
        .container_definitions(simple("app"))
        .container_definitions(simple("app"))
        .send()
        .await
        .expect_err("duplicate container names");
    assert!(
        ["ClientException", "InvalidParameterException"].contains(&error_code(&err).as_str()),
        "{err:?}"
    );
    // Nothing was registered.
    let families = ecs
        .list_task_definition_families()
        .send()
        .await
        .expect("ListTaskDefinitionFamilies");
    assert!(families.families().is_empty(), "{:?}", families.families());
}

#[tokio::test]
async fn list_task_definitions_filters_sorts_and_paginates() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let account = server.creds.account_id.clone();
    let arn = |f: &str, r: i32| format!("arn:aws:ecs:us-east-1:{account}:task-definition/{f}:{r}");
    for _ in 0..3 {
        register(&ecs, "alpha").await;
    }
    for _ in 0..2 {
        register(&ecs, "beta").await;
    }
    register(&ecs, "alpha-two").await;
    ecs.deregister_task_definition()
        .task_definition("alpha:2")
        .send()
        .await
        .expect("deregister alpha:2");

    // Everything ACTIVE, ascending, in pages of 2.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = ecs
            .list_task_definitions()
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("ListTaskDefinitions");
        assert!(out.task_definition_arns().len() <= 2);
        seen.extend(out.task_definition_arns().iter().cloned());
        pages += 1;
        assert!(pages <= 10, "pagination does not end");
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            arn("alpha", 1),
            arn("alpha", 3),
            arn("alpha-two", 1),
            arn("beta", 1),
            arn("beta", 2)
        ]
    );

    // familyPrefix is the exact family; DESC reverses.
    let out = ecs
        .list_task_definitions()
        .family_prefix("alpha")
        .sort(SortOrder::Desc)
        .send()
        .await
        .expect("ListTaskDefinitions alpha DESC");
    assert_eq!(
        out.task_definition_arns(),
        [arn("alpha", 3), arn("alpha", 1)]
    );

    // DESC pagination covers everything once too.
    let all_desc: Vec<String> = ecs
        .list_task_definitions()
        .sort(SortOrder::Desc)
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginator");
    let mut expected_desc = seen.clone();
    expected_desc.reverse();
    assert_eq!(all_desc, expected_desc);

    // INACTIVE.
    let out = ecs
        .list_task_definitions()
        .status(TaskDefinitionStatus::Inactive)
        .send()
        .await
        .expect("ListTaskDefinitions INACTIVE");
    assert_eq!(out.task_definition_arns(), [arn("alpha", 2)]);

    // Families: prefix match, status filters, pagination.
    let fams = |out: &aws_sdk_ecs::operation::list_task_definition_families::ListTaskDefinitionFamiliesOutput| {
        out.families().iter().cloned().collect::<BTreeSet<String>>()
    };
    let all = ecs
        .list_task_definition_families()
        .send()
        .await
        .expect("ListTaskDefinitionFamilies");
    assert_eq!(
        fams(&all),
        BTreeSet::from(["alpha".into(), "alpha-two".into(), "beta".into()])
    );
    let alpha = ecs
        .list_task_definition_families()
        .family_prefix("alpha")
        .send()
        .await
        .expect("prefix");
    assert_eq!(
        fams(&alpha),
        BTreeSet::from(["alpha".into(), "alpha-two".into()])
    );

    // beta loses its last ACTIVE revision: an INACTIVE family.
    for r in 1..=2 {
        ecs.deregister_task_definition()
            .task_definition(format!("beta:{r}"))
            .send()
            .await
            .expect("deregister beta");
    }
    let active = ecs
        .list_task_definition_families()
        .status(TaskDefinitionFamilyStatus::Active)
        .send()
        .await
        .expect("ACTIVE families");
    assert_eq!(
        fams(&active),
        BTreeSet::from(["alpha".into(), "alpha-two".into()])
    );
    let inactive = ecs
        .list_task_definition_families()
        .status(TaskDefinitionFamilyStatus::Inactive)
        .send()
        .await
        .expect("INACTIVE families");
    assert_eq!(fams(&inactive), BTreeSet::from(["beta".into()]));

    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ecs
            .list_task_definition_families()
            .status(TaskDefinitionFamilyStatus::All)
            .max_results(1)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("ListTaskDefinitionFamilies page");
        assert!(out.families().len() <= 1);
        paged.extend(out.families().iter().cloned());
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(paged.len() <= 3, "pagination does not end: {paged:?}");
    }
    assert_eq!(paged, ["alpha", "alpha-two", "beta"]);

    let err = ecs
        .list_task_definitions()
        .max_results(0)
        .send()
        .await
        .expect_err("maxResults 0");
    assert_eq!(error_code(&err), "InvalidParameterException");
}

#[tokio::test]
async fn delete_task_definitions() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let account = server.creds.account_id.clone();
    let family = unique("doomed");
    let arn = |r: i32| format!("arn:aws:ecs:us-east-1:{account}:task-definition/{family}:{r}");
    register(&ecs, &family).await;
    register(&ecs, &family).await;
    ecs.deregister_task_definition()
        .task_definition(format!("{family}:1"))
        .send()
        .await
        .expect("deregister");

    let out = ecs
        .delete_task_definitions()
        .task_definitions(format!("{family}:1"))
        .task_definitions(format!("{family}:2"))
        .task_definitions(format!("{family}:77"))
        .send()
        .await
        .expect("DeleteTaskDefinitions");
    let deleted: Vec<_> = out
        .task_definitions()
        .iter()
        .map(|t| {
            (
                t.task_definition_arn().unwrap_or_default(),
                t.status().cloned(),
            )
        })
        .collect();
    assert_eq!(
        deleted,
        [(
            arn(1).as_str(),
            Some(TaskDefinitionStatus::DeleteInProgress)
        )]
    );
    assert!(out.task_definitions()[0].delete_requested_at().is_some());
    // :2 is still ACTIVE and :77 does not exist: both are failures.
    assert_eq!(out.failures().len(), 2, "{:?}", out.failures());
    assert!(
        out.failures()
            .iter()
            .any(|f| f.arn().is_some_and(|a| a.ends_with(&format!("{family}:2")))),
        "{:?}",
        out.failures()
    );
    assert!(
        out.failures().iter().any(|f| f
            .arn()
            .is_some_and(|a| a.ends_with(&format!("{family}:77")))),
        "{:?}",
        out.failures()
    );

    let listed = ecs
        .list_task_definitions()
        .status(TaskDefinitionStatus::DeleteInProgress)
        .send()
        .await
        .expect("ListTaskDefinitions DELETE_IN_PROGRESS");
    assert_eq!(listed.task_definition_arns(), [arn(1)]);
    let inactive = ecs
        .list_task_definitions()
        .status(TaskDefinitionStatus::Inactive)
        .send()
        .await
        .expect("ListTaskDefinitions INACTIVE");
    assert!(inactive.task_definition_arns().is_empty());

    // Revision numbers are not reused after deletion.
    assert_eq!(register(&ecs, &family).await.revision(), 3);

    let err = ecs
        .delete_task_definitions()
        .send()
        .await
        .expect_err("empty list");
    assert!(
        ["ClientException", "InvalidParameterException"].contains(&error_code(&err).as_str()),
        "{err:?}"
    );
}
