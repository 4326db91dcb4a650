//! Pure validation and defaults of the service operations' inputs: every
//! check that does not need the store, so each is unit-tested alone.

use super::model::{
    CircuitBreaker, DeploymentConfiguration, PlacementConstraint, PlacementStrategy, SchedulingStrategy,
};
use crate::capacity_providers::StrategyItem;
use crate::error::{EcsError, EcsResult};
use berth_placement::{Constraint, Strategy};
use serde::Deserialize;
use serde_json::{Map, Value};

/// ECS allows at most 10 placement constraints and 5 strategies.
const MAX_CONSTRAINTS: usize = 10;
const MAX_STRATEGIES: usize = 5;

#[derive(Deserialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreakerInput {
    pub enable: Option<bool>,
    pub rollback: Option<bool>,
}

#[derive(Deserialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfigurationInput {
    pub deployment_circuit_breaker: Option<CircuitBreakerInput>,
    pub maximum_percent: Option<i64>,
    pub minimum_healthy_percent: Option<i64>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub expression: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct StrategyInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub field: Option<String>,
}

pub fn service_name(name: &str) -> EcsResult<()> {
    let ok = crate::input::is_simple_name(name);
    if ok {
        Ok(())
    } else {
        Err(EcsError::invalid(
            "Service name can have up to 255 characters and may contain only letters (uppercase and lowercase), numbers, underscores, and hyphens.",
        ))
    }
}

pub fn scheduling_strategy(text: Option<&str>) -> EcsResult<SchedulingStrategy> {
    match text {
        None | Some("REPLICA") => Ok(SchedulingStrategy::Replica),
        Some("DAEMON") => Ok(SchedulingStrategy::Daemon),
        Some(other) => {
            Err(EcsError::invalid(format!("Invalid schedulingStrategy {other}. Valid values are: REPLICA, DAEMON")))
        }
    }
}

/// desiredCount as ECS checks it: required for REPLICA, refused for DAEMON
/// (the scheduler decides: one task per instance).
pub fn desired_count(value: Option<i64>, scheduling: SchedulingStrategy) -> EcsResult<u32> {
    match (scheduling, value) {
        (SchedulingStrategy::Daemon, Some(_)) => Err(EcsError::invalid(
            "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again",
        )),
        (SchedulingStrategy::Daemon, None) => Ok(0),
        (SchedulingStrategy::Replica, None) => Err(EcsError::invalid("desiredCount can not be blank.")),
        (SchedulingStrategy::Replica, Some(n)) => count(n),
    }
}

/// A desiredCount value: 0 or more.
pub fn count(n: i64) -> EcsResult<u32> {
    u32::try_from(n).map_err(|_| EcsError::invalid("Desired count must be greater than or equal to 0."))
}

/// The launch type and capacity provider strategy a service records.
/// Berth runs tasks only on container instances: EC2 (the default) or
/// EXTERNAL.
pub fn launch(
    launch_type: Option<&str>,
    strategy: Option<&[StrategyItem]>,
    scheduling: SchedulingStrategy,
) -> EcsResult<(Option<String>, Vec<StrategyItem>)> {
    let strategy = strategy.unwrap_or_default();
    if launch_type.is_some() && !strategy.is_empty() {
        return Err(EcsError::invalid(
            "Specifying both a launchType and capacityProviderStrategy is not supported. Remove one and try again.",
        ));
    }
    if !strategy.is_empty() {
        if scheduling == SchedulingStrategy::Daemon {
            return Err(EcsError::invalid(
                "Specifying a capacity provider strategy is not supported when you create a service using the DAEMON scheduling strategy.",
            ));
        }
        crate::capacity_providers::validate_strategy(strategy)?;
        return Ok((None, strategy.to_vec()));
    }
    match launch_type {
        None | Some("EC2") => Ok((Some("EC2".into()), Vec::new())),
        Some("EXTERNAL") => Ok((Some("EXTERNAL".into()), Vec::new())),
        Some("FARGATE") => Err(EcsError::UnsupportedFeature(
            "The FARGATE launch type is not supported by Berth yet: run services on container instances (EC2).".into(),
        )),
        Some(other) => {
            Err(EcsError::invalid(format!("Invalid launchType {other}. Valid values are: EC2, FARGATE, EXTERNAL")))
        }
    }
}

/// The deployment configuration after applying `input` over `base` (the
/// service's current one on update, ECS's defaults on create: 100/200 for
/// REPLICA, 0/100 for DAEMON, circuit breaker off).
pub fn deployment_configuration(
    input: Option<&DeploymentConfigurationInput>,
    scheduling: SchedulingStrategy,
    base: Option<&DeploymentConfiguration>,
) -> EcsResult<DeploymentConfiguration> {
    let mut out = match base {
        Some(b) => b.clone(),
        None => {
            let (min, max) = match scheduling {
                SchedulingStrategy::Replica => (100, 200),
                SchedulingStrategy::Daemon => (0, 100),
            };
            DeploymentConfiguration {
                deployment_circuit_breaker: CircuitBreaker { enable: false, rollback: false },
                maximum_percent: max,
                minimum_healthy_percent: min,
            }
        }
    };
    let Some(input) = input else { return Ok(out) };
    if let Some(min) = input.minimum_healthy_percent {
        if !(0..=100).contains(&min) {
            return Err(EcsError::invalid("minimumHealthyPercent must be between 0 and 100."));
        }
        out.minimum_healthy_percent = min as u32;
    }
    if let Some(max) = input.maximum_percent {
        if !(100..=i64::from(i32::MAX)).contains(&max) {
            return Err(EcsError::invalid("maximumPercent must be greater than or equal to 100."));
        }
        out.maximum_percent = max as u32;
    }
    if scheduling == SchedulingStrategy::Daemon && out.maximum_percent != 100 {
        // The daemon scheduler never runs more than one task per instance.
        return Err(EcsError::invalid("The maximumPercent of a DAEMON service must be 100."));
    }
    if let Some(cb) = &input.deployment_circuit_breaker {
        let (Some(enable), Some(rollback)) = (cb.enable, cb.rollback) else {
            return Err(EcsError::invalid("deploymentCircuitBreaker requires both enable and rollback."));
        };
        out.deployment_circuit_breaker = CircuitBreaker { enable, rollback };
    }
    Ok(out)
}

/// Placement constraints and strategies, checked with the placement
/// engine's own parser (so what is stored is what the controller can
/// place), stored as given.
pub fn placement(
    constraints: Option<&[ConstraintInput]>,
    strategies: Option<&[StrategyInput]>,
    scheduling: SchedulingStrategy,
) -> EcsResult<(Vec<PlacementConstraint>, Vec<PlacementStrategy>)> {
    let constraints = constraints.unwrap_or_default();
    let strategies = strategies.unwrap_or_default();
    if constraints.len() > MAX_CONSTRAINTS {
        return Err(EcsError::invalid(format!("placementConstraints can have at most {MAX_CONSTRAINTS} items.")));
    }
    if strategies.len() > MAX_STRATEGIES {
        return Err(EcsError::invalid(format!("placementStrategy can have at most {MAX_STRATEGIES} items.")));
    }
    if scheduling == SchedulingStrategy::Daemon && !strategies.is_empty() {
        return Err(EcsError::invalid(
            "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again",
        ));
    }
    let mut out_c = Vec::new();
    for c in constraints {
        let kind = c.kind.clone().unwrap_or_default();
        let expression = c.expression.clone().filter(|e| !e.is_empty());
        Constraint::from_ecs(&kind, expression.as_deref()).map_err(|e| EcsError::invalid(e.to_string()))?;
        out_c.push(PlacementConstraint { kind, expression });
    }
    let mut out_s = Vec::new();
    for s in strategies {
        let kind = s.kind.clone().unwrap_or_default();
        Strategy::from_ecs(&kind, s.field.as_deref()).map_err(|e| EcsError::invalid(e.to_string()))?;
        out_s.push(PlacementStrategy { kind, field: s.field.clone() });
    }
    Ok((out_c, out_s))
}

pub fn propagate_tags(text: Option<&str>) -> EcsResult<String> {
    match text {
        None => Ok("NONE".into()),
        Some(p @ ("TASK_DEFINITION" | "SERVICE" | "NONE")) => Ok(p.into()),
        Some(other) => Err(EcsError::invalid(format!(
            "Invalid propagateTags {other}. Valid values are: TASK_DEFINITION, SERVICE, NONE"
        ))),
    }
}

pub fn grace_period(value: Option<i64>) -> EcsResult<Option<u32>> {
    match value {
        None => Ok(None),
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
        Some(_) => Err(EcsError::invalid("healthCheckGracePeriodSeconds must be between 0 and 2147483647.")),
    }
}

/// networkConfiguration against the task definition's network mode: awsvpc
/// needs subnets, other modes take none.
pub fn network_configuration(network_mode: &str, config: Option<&Value>) -> EcsResult<()> {
    let awsvpc = config.and_then(|n| n.get("awsvpcConfiguration"));
    if network_mode == "awsvpc" {
        let subnets = awsvpc.and_then(|a| a.get("subnets")).and_then(Value::as_array);
        if subnets.is_none_or(|s| s.is_empty()) {
            return Err(EcsError::invalid(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ));
        }
    } else if awsvpc.is_some() {
        return Err(EcsError::invalid(
            "Network Configuration is not valid for the given networkMode of this task definition.",
        ));
    }
    if let Some(a) = awsvpc {
        if let Some(ip) = a.get("assignPublicIp").and_then(Value::as_str)
            && ip != "ENABLED"
            && ip != "DISABLED"
        {
            return Err(EcsError::invalid(format!("Invalid assignPublicIp {ip}. Valid values are: ENABLED, DISABLED")));
        }
        let count = |m: &str| a.get(m).and_then(Value::as_array).map_or(0, Vec::len);
        if count("subnets") > 16 {
            return Err(EcsError::invalid("subnets can have at most 16 items."));
        }
        if count("securityGroups") > 5 {
            return Err(EcsError::invalid("securityGroups can have at most 5 items."));
        }
    }
    Ok(())
}

/// A canonical text of a request (object keys sorted at every level), so
/// two requests compare equal whatever order their members came in.
pub fn fingerprint(body: &Map<String, Value>) -> String {
    fn canonical(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    canonical(&Value::Object(body.clone())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(service_name("web_1-a").is_ok());
        for bad in ["", "a b", "a/b", "a.b", &"x".repeat(256)] {
            assert!(matches!(service_name(bad), Err(EcsError::InvalidParameter(_))), "{bad:?}");
        }
        assert!(service_name(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn desired_count_rules() {
        assert_eq!(desired_count(Some(3), SchedulingStrategy::Replica).unwrap(), 3);
        assert!(desired_count(None, SchedulingStrategy::Replica).is_err());
        assert!(desired_count(Some(-1), SchedulingStrategy::Replica).is_err());
        assert_eq!(desired_count(None, SchedulingStrategy::Daemon).unwrap(), 0);
        let e = desired_count(Some(1), SchedulingStrategy::Daemon).unwrap_err();
        assert!(e.to_string().contains("does not support a desired count"));
    }

    #[test]
    fn deployment_configuration_defaults_and_ranges() {
        let r = deployment_configuration(None, SchedulingStrategy::Replica, None).unwrap();
        assert_eq!((r.minimum_healthy_percent, r.maximum_percent), (100, 200));
        assert!(!r.deployment_circuit_breaker.enable);
        let d = deployment_configuration(None, SchedulingStrategy::Daemon, None).unwrap();
        assert_eq!((d.minimum_healthy_percent, d.maximum_percent), (0, 100));

        let input = DeploymentConfigurationInput {
            minimum_healthy_percent: Some(50),
            deployment_circuit_breaker: Some(CircuitBreakerInput { enable: Some(true), rollback: Some(true) }),
            ..Default::default()
        };
        let u = deployment_configuration(Some(&input), SchedulingStrategy::Replica, Some(&r)).unwrap();
        assert_eq!((u.minimum_healthy_percent, u.maximum_percent), (50, 200));
        assert_eq!(u.deployment_circuit_breaker, CircuitBreaker { enable: true, rollback: true });

        for (min, max) in [(Some(101), None), (Some(-1), None), (None, Some(99))] {
            let input = DeploymentConfigurationInput {
                minimum_healthy_percent: min,
                maximum_percent: max,
                ..Default::default()
            };
            assert!(deployment_configuration(Some(&input), SchedulingStrategy::Replica, None).is_err());
        }
        let input = DeploymentConfigurationInput { maximum_percent: Some(200), ..Default::default() };
        assert!(deployment_configuration(Some(&input), SchedulingStrategy::Daemon, None).is_err());
    }

    #[test]
    fn placement_rules() {
        let c = |k: &str, e: Option<&str>| ConstraintInput { kind: Some(k.into()), expression: e.map(Into::into) };
        let s = |k: &str, f: Option<&str>| StrategyInput { kind: Some(k.into()), field: f.map(Into::into) };
        let (cs, ss) = placement(
            Some(&[c("distinctInstance", None), c("memberOf", Some("attribute:ecs.os-type == linux"))]),
            Some(&[s("spread", Some("attribute:ecs.availability-zone")), s("binpack", Some("memory"))]),
            SchedulingStrategy::Replica,
        )
        .unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(ss[1], PlacementStrategy { kind: "binpack".into(), field: Some("memory".into()) });
        assert!(placement(Some(&[c("sometimes", None)]), None, SchedulingStrategy::Replica).is_err());
        assert!(placement(None, Some(&[s("binpack", Some("disk"))]), SchedulingStrategy::Replica).is_err());
        let e = placement(None, Some(&[s("random", None)]), SchedulingStrategy::Daemon).unwrap_err();
        assert!(e.to_string().contains("does not support placement strategies"));
        // DAEMON services may have constraints.
        assert!(placement(Some(&[c("distinctInstance", None)]), None, SchedulingStrategy::Daemon).is_ok());
    }

    #[test]
    fn launch_rules() {
        assert_eq!(launch(None, None, SchedulingStrategy::Replica).unwrap().0.as_deref(), Some("EC2"));
        let cp = [StrategyItem { capacity_provider: "cp".into(), weight: 1, base: 0 }];
        assert!(launch(Some("EC2"), Some(&cp), SchedulingStrategy::Replica).is_err());
        assert!(launch(None, Some(&cp), SchedulingStrategy::Daemon).is_err());
        assert_eq!(launch(None, Some(&cp), SchedulingStrategy::Replica).unwrap(), (None, cp.to_vec()));
        assert!(matches!(
            launch(Some("FARGATE"), None, SchedulingStrategy::Replica),
            Err(EcsError::UnsupportedFeature(_))
        ));
        assert!(matches!(launch(Some("X"), None, SchedulingStrategy::Replica), Err(EcsError::InvalidParameter(_))));
    }

    #[test]
    fn network_configuration_follows_network_mode() {
        let good = json!({"awsvpcConfiguration": {"subnets": ["subnet-1"]}});
        assert!(network_configuration("awsvpc", Some(&good)).is_ok());
        let e = network_configuration("awsvpc", None).unwrap_err();
        assert_eq!(e.to_string(), "Network Configuration must be provided when networkMode 'awsvpc' is specified.");
        assert!(network_configuration("bridge", Some(&good)).is_err());
        assert!(network_configuration("bridge", None).is_ok());
        let bad_ip = json!({"awsvpcConfiguration": {"subnets": ["s"], "assignPublicIp": "MAYBE"}});
        assert!(network_configuration("awsvpc", Some(&bad_ip)).is_err());
    }

    #[test]
    fn fingerprints_ignore_member_order() {
        let a = json!({"a": 1, "b": {"x": 1, "y": [1, 2]}});
        let b = json!({"b": {"y": [1, 2], "x": 1}, "a": 1});
        let c = json!({"b": {"y": [2, 1], "x": 1}, "a": 1});
        let f = |v: &Value| fingerprint(v.as_object().unwrap());
        assert_eq!(f(&a), f(&b));
        assert_ne!(f(&a), f(&c));
    }
}
