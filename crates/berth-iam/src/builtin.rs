//! Policies Berth ships: the AWS managed policies ECS users attach (under
//! `arn:aws:iam::aws:policy/...`), and the policy of agents' instance
//! credentials.

use berth_iam_policy::Policy;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// One AWS managed policy.
pub struct AwsManagedPolicy {
    pub name: &'static str,
    /// `/` or `/service-role/`.
    pub path: &'static str,
    pub description: &'static str,
    pub document: &'static str,
}

impl AwsManagedPolicy {
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::aws:policy{}{}", self.path, self.name)
    }
}

pub const AWS_MANAGED: &[AwsManagedPolicy] = &[
    AwsManagedPolicy {
        name: "AdministratorAccess",
        path: "/",
        description: "Provides full access to AWS services and resources.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    },
    AwsManagedPolicy {
        name: "ReadOnlyAccess",
        path: "/",
        description: "Provides read-only access to AWS services and resources.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:Describe*","ecs:List*","ec2:Describe*","elasticloadbalancing:Describe*","iam:Get*","iam:List*","logs:Describe*","logs:Get*","cloudwatch:Describe*","cloudwatch:Get*","cloudwatch:List*","application-autoscaling:Describe*","ecr:Describe*","ecr:List*","ecr:BatchGetImage","ecr:GetAuthorizationToken"],"Resource":"*"}]}"#,
    },
    AwsManagedPolicy {
        name: "AmazonECS_FullAccess",
        path: "/",
        description: "Provides administrative access to Amazon ECS resources.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"ECSIntegrationsManagementPolicy","Effect":"Allow","Action":["ecs:*","elasticloadbalancing:*","application-autoscaling:*","cloudwatch:*","ec2:Describe*","logs:*","servicediscovery:*","iam:ListRoles","iam:ListInstanceProfiles","iam:GetRole"],"Resource":"*"},{"Sid":"PassRoleForECS","Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringLike":{"iam:PassedToService":"ecs-tasks.amazonaws.com"}}}]}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ContainerServiceforEC2Role",
        path: "/service-role/",
        description: "Default policy for the Amazon EC2 Role for Amazon EC2 Container Service.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:DescribeTags","ecs:CreateCluster","ecs:DeregisterContainerInstance","ecs:DiscoverPollEndpoint","ecs:Poll","ecs:RegisterContainerInstance","ecs:StartTelemetrySession","ecs:UpdateContainerInstancesState","ecs:Submit*","ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    },
    AwsManagedPolicy {
        name: "AmazonECSTaskExecutionRolePolicy",
        path: "/service-role/",
        description: "Provides access to other AWS service resources that are required to run Amazon ECS tasks",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    },
    AwsManagedPolicy {
        name: "IAMFullAccess",
        path: "/",
        description: "Provides full access to IAM via the AWS Management Console.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#,
    },
    AwsManagedPolicy {
        name: "IAMReadOnlyAccess",
        path: "/",
        description: "Provides read only access to IAM via the AWS Management Console.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"}]}"#,
    },
];

/// What an agent's instance credentials may do: the agent-facing ECS
/// calls, pulling images, sending logs, and asking who it is. Unlike AWS's
/// AmazonEC2ContainerServiceforEC2Role it cannot create clusters or change
/// instances' state: a host is trusted with its own tasks only.
pub const INSTANCE_ROLE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"BerthAgent","Effect":"Allow","Action":["ecs:RegisterContainerInstance","ecs:DiscoverPollEndpoint","ecs:Poll","ecs:SubmitTaskStateChange","ecs:SubmitContainerStateChange","ecs:SubmitAttachmentStateChanges","ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","logs:CreateLogStream","logs:PutLogEvents","sts:GetCallerIdentity"],"Resource":"*"}]}"#;

/// The AWS managed policies parsed, by ARN, and the instance role policy.
type Parsed = (HashMap<String, Arc<Policy>>, Arc<Policy>);

fn parsed() -> &'static Parsed {
    static PARSED: OnceLock<Parsed> = OnceLock::new();
    PARSED.get_or_init(|| {
        let managed = AWS_MANAGED
            .iter()
            .filter_map(|p| match Policy::parse(p.document) {
                Ok(parsed) => Some((p.arn(), Arc::new(parsed))),
                Err(e) => {
                    // Covered by a unit test; never happens in a release.
                    tracing::error!(policy = p.name, error = %e, "built-in policy does not parse");
                    None
                }
            })
            .collect();
        let instance = Policy::parse(INSTANCE_ROLE_POLICY).map(Arc::new).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the instance role policy does not parse; instances may do nothing");
            Arc::new(Policy { version: berth_iam_policy::Version::V2012_10_17, id: None, statements: Vec::new() })
        });
        (managed, instance)
    })
}

/// The parsed AWS managed policy with this ARN.
pub fn aws_managed(arn: &str) -> Option<Arc<Policy>> {
    parsed().0.get(arn).cloned()
}

/// The description of the AWS managed policy with this ARN.
pub fn aws_managed_info(arn: &str) -> Option<&'static AwsManagedPolicy> {
    AWS_MANAGED.iter().find(|p| p.arn() == arn)
}

/// A stable `ANPA...` id for an AWS managed policy (they have no stored
/// record): derived from its ARN, so every server and restart agrees.
pub fn aws_managed_id(p: &AwsManagedPolicy) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(p.arn().as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    format!("ANPA{tail}")
}

pub fn instance_role_policy() -> Arc<Policy> {
    parsed().1.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_policy_parses() {
        for p in AWS_MANAGED {
            Policy::parse(p.document).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert!(aws_managed(&p.arn()).is_some(), "{}", p.arn());
        }
        Policy::parse(INSTANCE_ROLE_POLICY).unwrap();
        assert_eq!(
            aws_managed_info(
                "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
            )
            .map(|p| p.name),
            Some("AmazonECSTaskExecutionRolePolicy")
        );
    }
}
