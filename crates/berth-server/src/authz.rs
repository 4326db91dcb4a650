//! Who may do what: every request is named as an IAM action on one or more
//! resources and decided by the caller's identity policies (berth-iam's
//! directory over the policy language of berth-iam-policy). The account
//! root is allowed everything, as in AWS; an agent's instance credentials
//! carry the built-in instance role policy (only what an agent needs).

use berth_iam::{Caller, RequestFacts, Snapshot};

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

/// A refused request: the resource it was refused on and AWS's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub resource: String,
    pub message: String,
}

/// May `caller` perform `action` on every one of `resources`? The first
/// resource refused decides the message, as IAM reports one.
pub fn check(snapshot: &Snapshot, caller: &Caller, action: Action<'_>, resources: &[String], facts: &RequestFacts) -> Result<(), Denial> {
    check_with(snapshot, caller, action, resources, facts, &[])
}

/// [`check`] with the service's own condition keys (`ecs:cluster`, ...).
pub fn check_with(
    snapshot: &Snapshot,
    caller: &Caller,
    action: Action<'_>,
    resources: &[String],
    facts: &RequestFacts,
    keys: &[(&str, String)],
) -> Result<(), Denial> {
    if caller.is_root() {
        return Ok(());
    }
    let action_text = action.to_string();
    match snapshot.first_denied(caller, &action_text, resources, facts, keys) {
        None => Ok(()),
        Some((resource, decision)) => {
            tracing::debug!(principal = %caller.arn, action = %action_text, %resource, ?decision, "access denied");
            Err(Denial {
                resource: resource.to_string(),
                message: berth_iam::directory::denial_message(&caller.arn, &action_text, resource, &decision),
            })
        }
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
    use berth_arn::AccountId;
    use berth_iam::CallerKind;
    use std::time::SystemTime;

    fn facts() -> RequestFacts {
        RequestFacts { now: SystemTime::now(), source_ip: None, region: "us-east-1".into(), secure_transport: false }
    }

    fn account() -> AccountId {
        AccountId::try_from("123456789012".to_string()).unwrap()
    }

    fn instance() -> Caller {
        Caller {
            kind: CallerKind::Instance { session_name: "host-a".into() },
            arn: "arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a".into(),
            user_id: "AROAEXAMPLE:host-a".into(),
            account: account(),
            token_issued_at: None,
        }
    }

    fn ecs(name: &str) -> Action<'_> {
        Action { service: "ecs", name }
    }

    #[test]
    fn root_may_do_anything() {
        let snap = Snapshot::build(account(), Default::default(), 0);
        let root = Caller::root(&account());
        for a in [ecs("CreateCluster"), Action::POLL, Action::CREATE_INSTANCE_CREDENTIALS, Action { service: "ec2", name: "DescribeVpcs" }] {
            assert_eq!(check(&snap, &root, a, &["*".into()], &facts()), Ok(()), "{a}");
        }
    }

    #[test]
    fn instance_may_do_only_agent_actions() {
        let snap = Snapshot::build(account(), Default::default(), 0);
        let star = ["*".to_string()];
        for name in ["RegisterContainerInstance", "DiscoverPollEndpoint", "SubmitTaskStateChange", "SubmitContainerStateChange", "SubmitAttachmentStateChanges", "Poll"] {
            assert_eq!(check(&snap, &instance(), ecs(name), &star, &facts()), Ok(()), "{name}");
        }
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
            Action { service: "iam", name: "CreateUser" },
            // The name alone is not enough: the service must match too.
            Action { service: "logs", name: "SubmitTaskStateChange" },
            Action { service: "sts", name: "Poll" },
        ] {
            assert!(check(&snap, &instance(), denied, &star, &facts()).is_err(), "{denied}");
        }
    }

    #[test]
    fn denials_are_worded_as_aws_words_them() {
        let snap = Snapshot::build(account(), Default::default(), 0);
        let arn = "arn:aws:ecs:us-east-1:123456789012:cluster/prod".to_string();
        let denial = check(&snap, &instance(), ecs("CreateCluster"), &[arn.clone()], &facts()).unwrap_err();
        assert_eq!(denial.resource, arn);
        assert_eq!(
            denial.message,
            "User: arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a is not authorized to perform: ecs:CreateCluster on resource: arn:aws:ecs:us-east-1:123456789012:cluster/prod because no identity-based policy allows the ecs:CreateCluster action"
        );
        assert_eq!(
            ec2_denial_message(&instance().arn, Action { service: "ec2", name: "DescribeVpcs" }),
            "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a is not authorized to perform: ec2:DescribeVpcs because no identity-based policy allows the ec2:DescribeVpcs action"
        );
        assert_eq!(iam_prefix("monitoring"), "cloudwatch");
        assert_eq!(iam_prefix("ecs"), "ecs");
    }
}
