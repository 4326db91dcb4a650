//! Who may do what: the authorization decision, and how a denial is worded.
//!
//! Berth knows two kinds of principal today: the account root, which may do
//! everything, and an instance (an agent's own key, see
//! [`crate::instance_credentials`]), which may do exactly what an agent
//! needs: register its host, find the poll endpoint, report task,
//! container and attachment state, long-poll its desired state, and ask
//! who it is.
//!
//! The decision is deliberately a small pure function of
//! (principal kind, action), with actions named as IAM names them
//! (`ecs:CreateCluster`, `ec2:DescribeVpcs`, `ecs:Poll`), so that the IAM
//! policy engine of issue 6 can replace [`decide`] with a policy evaluation
//! (identity policies attached to the root, to `BerthInstanceRole`, ...)
//! without the front door changing: it already names every request as an
//! action and renders a denial in each protocol the way AWS words it.

/// What kind of principal signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account root key: everything is allowed.
    Root,
    /// An agent's instance credentials: only the agent-facing actions.
    Instance,
}

/// One action, as IAM names it: `service:Name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action<'a> {
    /// IAM's service prefix (`ecs`, `sts`, `ec2`, `cloudwatch`, `berth`).
    pub service: &'a str,
    pub name: &'a str,
}

impl Action<'_> {
    /// The agent's long poll (`POST /agent/v1/poll`). ECS's own agent
    /// needs `ecs:Poll` for its session too, so the name is the real one.
    pub const POLL: Action<'static> = Action { service: "ecs", name: "Poll" };
    /// Minting instance credentials (`POST /agent/v1/credentials`): a
    /// Berth-only API, so a Berth-only namespace.
    pub const CREATE_INSTANCE_CREDENTIALS: Action<'static> =
        Action { service: "berth", name: "CreateInstanceCredentials" };
}

impl std::fmt::Display for Action<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.service, self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Nothing allows it (IAM's implicit deny; Berth has no explicit denies yet).
    Deny,
}

/// Everything an instance principal may do.
pub const INSTANCE_ACTIONS: &[Action<'static>] = &[
    Action { service: "ecs", name: "RegisterContainerInstance" },
    Action { service: "ecs", name: "DiscoverPollEndpoint" },
    Action { service: "ecs", name: "SubmitTaskStateChange" },
    Action { service: "ecs", name: "SubmitContainerStateChange" },
    Action { service: "ecs", name: "SubmitAttachmentStateChanges" },
    Action::POLL,
    // STS answers GetCallerIdentity for every principal, whatever its
    // policies say; listed so the table reads true.
    Action { service: "sts", name: "GetCallerIdentity" },
];

/// May `principal` perform `action`? The whole of Berth's authorization
/// until issue 6's policy engine replaces this function.
pub fn decide(principal: PrincipalKind, action: Action<'_>) -> Decision {
    match principal {
        PrincipalKind::Root => Decision::Allow,
        PrincipalKind::Instance if INSTANCE_ACTIONS.contains(&action) => Decision::Allow,
        PrincipalKind::Instance => Decision::Deny,
    }
}

/// IAM's service prefix for a service's signing name (they differ for
/// CloudWatch only, among the services Berth routes).
pub fn iam_prefix(signing_name: &str) -> &str {
    match signing_name {
        "monitoring" => "cloudwatch",
        other => other,
    }
}

/// The message of an ECS `AccessDeniedException` (and of STS/IAM's
/// `AccessDenied`), as AWS words it.
pub fn denial_message(principal_arn: &str, action: Action<'_>) -> String {
    format!(
        "User: {principal_arn} is not authorized to perform: {action} on resource: * because no identity-based policy allows the {action} action"
    )
}

/// The message of EC2's `UnauthorizedOperation`, as EC2 words it (no
/// resource; EC2 puts its own sentence first).
pub fn ec2_denial_message(principal_arn: &str, action: Action<'_>) -> String {
    format!(
        "You are not authorized to perform this operation. User: {principal_arn} is not authorized to perform: {action} because no identity-based policy allows the {action} action"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecs(name: &str) -> Action<'_> {
        Action { service: "ecs", name }
    }

    #[test]
    fn root_may_do_anything() {
        for a in [ecs("CreateCluster"), Action::POLL, Action::CREATE_INSTANCE_CREDENTIALS, Action { service: "ec2", name: "DescribeVpcs" }] {
            assert_eq!(decide(PrincipalKind::Root, a), Decision::Allow, "{a}");
        }
    }

    #[test]
    fn instance_may_do_only_agent_actions() {
        for name in [
            "RegisterContainerInstance",
            "DiscoverPollEndpoint",
            "SubmitTaskStateChange",
            "SubmitContainerStateChange",
            "SubmitAttachmentStateChanges",
            "Poll",
        ] {
            assert_eq!(decide(PrincipalKind::Instance, ecs(name)), Decision::Allow, "{name}");
        }
        assert_eq!(decide(PrincipalKind::Instance, Action { service: "sts", name: "GetCallerIdentity" }), Decision::Allow);
        for denied in [
            ecs("CreateCluster"),
            ecs("RunTask"),
            ecs("StopTask"),
            ecs("DeregisterContainerInstance"),
            ecs("UpdateContainerInstancesState"),
            ecs("DescribeTasks"),
            ecs("ListClusters"),
            Action::CREATE_INSTANCE_CREDENTIALS,
            Action { service: "ec2", name: "DescribeVpcs" },
            Action { service: "sts", name: "AssumeRole" },
            // The name alone is not enough: the service must match too.
            Action { service: "logs", name: "SubmitTaskStateChange" },
            Action { service: "sts", name: "Poll" },
        ] {
            assert_eq!(decide(PrincipalKind::Instance, denied), Decision::Deny, "{denied}");
        }
    }

    #[test]
    fn denials_are_worded_as_aws_words_them() {
        let arn = "arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a";
        assert_eq!(
            denial_message(arn, ecs("CreateCluster")),
            "User: arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a is not authorized to perform: ecs:CreateCluster on resource: * because no identity-based policy allows the ecs:CreateCluster action"
        );
        assert_eq!(
            ec2_denial_message(arn, Action { service: "ec2", name: "DescribeVpcs" }),
            "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a is not authorized to perform: ec2:DescribeVpcs because no identity-based policy allows the ec2:DescribeVpcs action"
        );
        assert_eq!(iam_prefix("monitoring"), "cloudwatch");
        assert_eq!(iam_prefix("ecs"), "ecs");
    }
}
