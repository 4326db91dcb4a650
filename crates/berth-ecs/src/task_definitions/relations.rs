//! What containers say about one another (links, volumesFrom, dependsOn,
//! FireLens routing) and what they ask for against the task's size.

use super::containers::bad;
use super::model::ContainerView;
use super::units::TaskSize;
use super::validate::one_of;
use crate::error::{EcsError, EcsResult};
use std::collections::HashMap;

/// What containers say about one another: links, volumesFrom and
/// dependsOn must name containers of this definition, at least one
/// container must be essential, and FireLens needs its router.
pub fn references(containers: &[&ContainerView]) -> EcsResult<()> {
    let by_name: HashMap<&str, &ContainerView> =
        containers.iter().map(|c| (c.label(), *c)).collect();
    if !containers.iter().any(|c| c.essential != Some(false)) {
        return Err(EcsError::client(
            "A task definition must have at least one essential container.",
        ));
    }
    for c in containers {
        let name = c.label();
        for link in c.links.iter().flatten() {
            let target = link.split(':').next().unwrap_or("");
            if target == name || !by_name.contains_key(target) {
                return Err(bad(
                    name,
                    "links",
                    format!(
                        "The linked container '{target}' is not another container of this task definition."
                    ),
                ));
            }
        }
        for v in c.volumes_from.iter().flatten() {
            let source = v.source_container.as_deref().unwrap_or("");
            if source == name || !by_name.contains_key(source) {
                return Err(bad(
                    name,
                    "volumesFrom",
                    format!(
                        "The source container '{source}' is not another container of this task definition."
                    ),
                ));
            }
        }
        for d in c.depends_on.iter().flatten() {
            let target = d.container_name.as_deref().unwrap_or("");
            let condition = d.condition.as_deref().unwrap_or("");
            one_of(
                condition,
                "dependsOn.condition",
                &["START", "COMPLETE", "SUCCESS", "HEALTHY"],
            )?;
            let Some(t) = by_name.get(target).filter(|_| target != name) else {
                return Err(bad(
                    name,
                    "dependsOn",
                    format!(
                        "The container '{target}' is not another container of this task definition."
                    ),
                ));
            };
            if condition == "HEALTHY" && t.health_check.is_none() {
                return Err(bad(
                    name,
                    "dependsOn",
                    format!(
                        "The HEALTHY condition requires container '{target}' to have a health check."
                    ),
                ));
            }
            // An essential container that exits stops the task, so nothing
            // could ever start after it completes.
            if matches!(condition, "COMPLETE" | "SUCCESS") && t.essential != Some(false) {
                return Err(bad(
                    name,
                    "dependsOn",
                    format!(
                        "The {condition} condition cannot be set on essential container '{target}'."
                    ),
                ));
            }
        }
    }
    dependency_cycles(containers)?;
    let routers = containers
        .iter()
        .filter(|c| c.firelens_configuration.is_some())
        .count();
    if routers > 1 {
        return Err(EcsError::client(
            "Only one container in a task definition can have a firelensConfiguration.",
        ));
    }
    if routers == 0
        && containers
            .iter()
            .any(|c| c.log_driver() == Some("awsfirelens"))
    {
        return Err(EcsError::client(
            "The awsfirelens log driver requires a container with a firelensConfiguration in the task definition.",
        ));
    }
    Ok(())
}

/// Containers whose dependsOn chain loops could never start.
fn dependency_cycles(containers: &[&ContainerView]) -> EcsResult<()> {
    let edges: HashMap<&str, Vec<&str>> = containers
        .iter()
        .map(|c| {
            (
                c.label(),
                c.depends_on
                    .iter()
                    .flatten()
                    .filter_map(|d| d.container_name.as_deref())
                    .collect(),
            )
        })
        .collect();
    // Colours: absent = unvisited, false = on the current path, true = done.
    let mut state: HashMap<&str, bool> = HashMap::new();
    for start in edges.keys() {
        if state.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, false);
        while let Some((node, i)) = stack.pop() {
            let next = edges.get(node).and_then(|e| e.get(i)).copied();
            match next {
                None => {
                    state.insert(node, true);
                }
                Some(n) => {
                    stack.push((node, i + 1));
                    match state.get(n) {
                        Some(false) => {
                            return Err(EcsError::client(format!(
                                "Circular container dependency detected involving container '{n}'."
                            )));
                        }
                        Some(true) => {}
                        None => {
                            state.insert(n, false);
                            stack.push((n, 0));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Memory and cpu: ECS must know how much memory each container may use,
/// and what the containers ask for must fit in the task's size.
pub fn resources(containers: &[&ContainerView], size: &TaskSize) -> EcsResult<()> {
    let mut reserved: i64 = 0;
    let mut cpu: i64 = 0;
    for c in containers {
        let name = c.label();
        if size.memory.is_none() && c.memory.is_none() && c.memory_reservation.is_none() {
            return Err(EcsError::client(format!(
                "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
            )));
        }
        if let (Some(task), Some(m)) = (size.memory, c.memory)
            && i64::from(m) > i64::from(task)
        {
            return Err(bad(
                name,
                "memory",
                format!("Container memory ({m} MiB) must not exceed the task memory ({task} MiB)."),
            ));
        }
        reserved += i64::from(c.memory_reservation.or(c.memory).unwrap_or(0));
        cpu += i64::from(c.cpu.unwrap_or(0));
    }
    if let Some(task) = size.memory
        && reserved > i64::from(task)
    {
        return Err(EcsError::client(format!(
            "Invalid 'memory' setting for task. The memory reserved by the containers ({reserved} MiB) exceeds the task memory ({task} MiB)."
        )));
    }
    if let Some(task) = size.cpu
        && cpu > i64::from(task)
    {
        return Err(EcsError::client(format!(
            "Invalid 'cpu' setting for task. The sum of the container cpu values ({cpu}) exceeds the task cpu ({task})."
        )));
    }
    Ok(())
}
