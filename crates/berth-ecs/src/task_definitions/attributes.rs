//! `requiresAttributes`: the container-instance attributes a revision needs,
//! which ECS derives from the features it uses so that placement only picks
//! agents able to run it.
//!
//! The mapping follows the attributes ECS documents and shows in its
//! responses (e.g. awslogs brings `logging-driver.awslogs` plus Docker
//! remote API 1.18 and 1.19; an ECR image pulled with an execution role
//! brings `ecr-auth` and `execution-role-ecr-pull`). It covers the features
//! that gate scheduling; it does not try to reproduce every Docker API
//! version ECS may list.

use super::compat::is_ecr_image;
use super::model::{ContainerView, RegisterView};

const DOCKER_API: &str = "com.amazonaws.ecs.capability.docker-remote-api.";

/// Names in first-seen order, without duplicates.
#[derive(Default)]
struct Names(Vec<String>);

impl Names {
    fn add(&mut self, name: impl Into<String>) {
        let name = name.into();
        if !self.0.contains(&name) {
            self.0.push(name);
        }
    }
    fn docker(&mut self, version: &str) {
        self.add(format!("{DOCKER_API}{version}"));
    }
}

pub fn compute(view: &RegisterView) -> Vec<String> {
    let mut n = Names::default();
    let execution_role = view
        .execution_role_arn
        .as_deref()
        .is_some_and(|a| !a.is_empty());
    if view.task_role_arn.as_deref().is_some_and(|a| !a.is_empty()) {
        n.add("com.amazonaws.ecs.capability.task-iam-role");
        if view.network_mode() == Some("host") {
            n.add("com.amazonaws.ecs.capability.task-iam-role-network-host");
        }
    }
    if view.network_mode() == Some("awsvpc") {
        n.add("ecs.capability.task-eni");
    }
    for c in view.containers() {
        container(&mut n, c, execution_role);
    }
    for v in view.volumes() {
        if let Some(d) = &v.docker_volume_configuration {
            n.docker("1.25");
            if let Some(driver) = d.driver.as_deref().filter(|d| *d != "local") {
                n.add(format!("ecs.capability.docker-plugin.{driver}"));
            }
        }
        if let Some(efs) = &v.efs_volume_configuration {
            n.add("ecs.capability.efs");
            if efs.authorization_config.is_some()
                || efs.transit_encryption.as_deref() == Some("ENABLED")
            {
                n.add("ecs.capability.efsAuth");
            }
        }
        if v.fsx_windows_file_server_volume_configuration.is_some() {
            n.add("ecs.capability.fsxWindowsFileServer");
        }
    }
    if view.proxy_configuration.is_some() {
        n.add("ecs.capability.aws-appmesh");
    }
    n.0
}

fn container(n: &mut Names, c: &ContainerView, execution_role: bool) {
    if c.image.as_deref().is_some_and(is_ecr_image) {
        n.add("com.amazonaws.ecs.capability.ecr-auth");
        if execution_role {
            n.add("ecs.capability.execution-role-ecr-pull");
        }
    }
    if c.repository_credentials.is_some() {
        n.add("com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager");
    }
    if let Some(log) = &c.log_configuration {
        n.docker("1.18");
        if let Some(driver) = &log.log_driver {
            n.add(format!(
                "com.amazonaws.ecs.capability.logging-driver.{driver}"
            ));
            if driver == "awslogs" {
                n.docker("1.19");
                if execution_role {
                    n.add("ecs.capability.execution-role-awslogs");
                }
            }
        }
        for s in log.secret_options.iter().flatten() {
            n.add(format!(
                "ecs.capability.secrets.{}.bootstrap.log-driver",
                secret_store(s.value_from.as_deref())
            ));
        }
    }
    for s in c.secrets() {
        n.add(format!(
            "ecs.capability.secrets.{}.environment-variables",
            secret_store(s.value_from.as_deref())
        ));
    }
    if c.memory_reservation.is_some() {
        n.docker("1.21");
    }
    if c.docker_labels.as_ref().is_some_and(|l| !l.is_empty())
        || c.ulimits.as_ref().is_some_and(|u| !u.is_empty())
    {
        n.docker("1.18");
    }
    if c.readonly_root_filesystem.is_some() {
        n.docker("1.17");
    }
    if c.health_check.is_some() {
        n.add("ecs.capability.container-health-check");
    }
    if c.depends_on.as_ref().is_some_and(|d| !d.is_empty()) || c.start_timeout.is_some() {
        n.add("ecs.capability.container-ordering");
    }
    if c.environment_files.as_ref().is_some_and(|f| !f.is_empty()) {
        n.add("ecs.capability.env-files.s3");
    }
    if c.linux_parameters
        .as_ref()
        .is_some_and(|lp| lp.init_process_enabled.is_some())
    {
        n.docker("1.25");
    }
    if let Some(f) = &c.firelens_configuration {
        if let Some(kind) = &f.kind {
            n.add(format!("ecs.capability.firelens.{kind}"));
        }
        match f
            .options
            .as_ref()
            .and_then(|o| o.get("config-file-type"))
            .map(String::as_str)
        {
            Some("s3") => n.add("ecs.capability.firelens.options.config.s3"),
            Some("file") => n.add("ecs.capability.firelens.options.config.file"),
            _ => {}
        }
    }
}

/// Secrets Manager ARNs name `secretsmanager`; anything else is an SSM
/// parameter (by name or ARN).
fn secret_store(value_from: Option<&str>) -> &'static str {
    if value_from.is_some_and(|v| v.contains(":secretsmanager:")) {
        "asm"
    } else {
        "ssm"
    }
}
