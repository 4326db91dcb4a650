//! `X-Amz-Target: <ServicePrefix>.<Operation>` for the JSON protocols.

/// The services Berth routes by `X-Amz-Target` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonService {
    Ecs,
    ApplicationAutoScaling,
    CloudWatchLogs,
    SecretsManager,
    Ssm,
    ServiceDiscovery,
    Ecr,
    CloudWatch,
}

impl JsonService {
    /// The AWS name of the service, used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            JsonService::Ecs => "ecs",
            JsonService::ApplicationAutoScaling => "application-autoscaling",
            JsonService::CloudWatchLogs => "logs",
            JsonService::SecretsManager => "secretsmanager",
            JsonService::Ssm => "ssm",
            JsonService::ServiceDiscovery => "servicediscovery",
            JsonService::Ecr => "ecr",
            JsonService::CloudWatch => "monitoring",
        }
    }
}

const PREFIXES: &[(&str, JsonService)] = &[
    ("AmazonEC2ContainerServiceV20141113", JsonService::Ecs),
    ("AnyScaleFrontendService", JsonService::ApplicationAutoScaling),
    ("Logs_20140328", JsonService::CloudWatchLogs),
    ("secretsmanager", JsonService::SecretsManager),
    ("AmazonSSM", JsonService::Ssm),
    ("Route53AutoNaming_v20170314", JsonService::ServiceDiscovery),
    ("AmazonEC2ContainerRegistry_V20150921", JsonService::Ecr),
    ("GraniteServiceVersion20100801", JsonService::CloudWatch),
];

/// The parsed target header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    Known { service: JsonService, operation: &'a str },
    /// Well-formed but naming a service Berth does not know.
    UnknownService { prefix: &'a str, operation: &'a str },
}

/// Parse an `X-Amz-Target` value. `None` if it has no `.` or an empty side.
pub fn parse(value: &str) -> Option<Target<'_>> {
    let (prefix, operation) = value.rsplit_once('.')?;
    if prefix.is_empty() || operation.is_empty() {
        return None;
    }
    Some(match PREFIXES.iter().find(|(p, _)| *p == prefix) {
        Some((_, service)) => Target::Known { service: *service, operation },
        None => Target::UnknownService { prefix, operation },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ecs_target() {
        assert_eq!(
            parse("AmazonEC2ContainerServiceV20141113.CreateCluster"),
            Some(Target::Known { service: JsonService::Ecs, operation: "CreateCluster" })
        );
        assert!(matches!(parse("Foo.Bar"), Some(Target::UnknownService { .. })));
        assert_eq!(parse("NoDot"), None);
        assert_eq!(parse("Trailing."), None);
    }
}
