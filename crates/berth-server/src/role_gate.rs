//! ECS's questions about roles, answered by IAM: may the caller pass this
//! role, does it trust ECS tasks, and fresh credentials for a task's roles.

use crate::instance_credentials;
use berth_agent_protocol::{RoleCredentials, TaskCredentials};
use berth_ecs::RequestContext;
use berth_ecs::roles::RoleGate;
use berth_iam::sessions::{self, SessionClaims, SessionSubject};
use berth_iam::trust::{self, Assumer, TrustDecision};
use berth_iam::model::Role;
use berth_iam::{Caller, Iam, RequestFacts, Snapshot};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The service principal ECS tasks assume roles as.
pub const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";

/// How long task role credentials last. The agent gets fresh ones with
/// every poll answer (at least every few seconds), so the life only bounds
/// how long a copy taken out of a container stays useful; ECS uses 6 hours.
pub const TASK_CREDENTIALS_SECS: u64 = 6 * 3600;

pub struct IamRoleGate {
    iam: Arc<Iam>,
}

impl IamRoleGate {
    pub fn new(iam: Arc<Iam>) -> IamRoleGate {
        IamRoleGate { iam }
    }

    /// The id in a task's `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`: a MAC
    /// of its ARN, so it is stable across polls and restarts, and nobody
    /// without the master key can compute another task's.
    pub fn credentials_id(&self, task_arn: &str) -> String {
        self.iam.key().mac("credentials-id", task_arn.as_bytes())[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn mint_for_task(&self, snapshot: &Snapshot, ctx: &RequestContext, role_arn: &str, task_id: &str, now: SystemTime) -> Result<RoleCredentials, String> {
        let role = assumable_by_ecs_tasks(snapshot, ctx, role_arn)?;
        let issued_at = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let claims = SessionClaims {
            account: ctx.account.to_string(),
            subject: SessionSubject::AssumedRole { role_name: role.name.clone(), role_id: role.id.clone(), session_name: task_id.to_string() },
            issued_at,
            expires_at: issued_at + TASK_CREDENTIALS_SECS,
        };
        let minted = sessions::mint(self.iam.key(), &claims);
        Ok(RoleCredentials {
            role_arn: role.arn.clone(),
            access_key_id: minted.access_key_id,
            secret_access_key: minted.secret_access_key,
            session_token: minted.session_token,
            expiration: berth_clock::civil::iso8601_seconds(minted.expires_at as i64),
        })
    }
}

/// The role `role_arn` if it is in the caller's account and its trust
/// policy lets ECS tasks assume it; else why not.
fn assumable_by_ecs_tasks<'s>(snapshot: &'s Snapshot, ctx: &RequestContext, role_arn: &str) -> Result<&'s Role, String> {
    let role = snapshot
        .state()
        .role_by_arn(role_arn)
        .filter(|_| role_arn.split(':').nth(4) == Some(ctx.account.as_str()))
        .ok_or_else(|| format!("the role {role_arn} does not exist"))?;
    if trust::evaluate(role, Assumer::Service(ECS_TASKS)) != TrustDecision::AllowedByName {
        return Err(format!("the trust policy of {role_arn} does not allow {ECS_TASKS} to assume it"));
    }
    Ok(role)
}

/// The caller of an ECS request, from its principal ARN (the front door
/// authenticated it; ECS handlers only carry the ARN).
pub fn caller_from_arn(snapshot: &Snapshot, arn: &str) -> Option<Caller> {
    let account = snapshot.account();
    if arn == format!("arn:aws:iam::{account}:root") {
        return Some(Caller::root(account));
    }
    if let Some(rest) = arn.strip_prefix(&format!("arn:aws:iam::{account}:user/")) {
        let name = rest.rsplit('/').next()?;
        let user = snapshot.state().user(name).filter(|u| u.arn == arn)?;
        return Some(Caller::user(account, &user.name, &user.id, arn));
    }
    let rest = arn.strip_prefix(&format!("arn:aws:sts::{account}:assumed-role/"))?;
    let (role_name, session_name) = rest.split_once('/')?;
    if role_name == instance_credentials::ROLE_NAME {
        return Some(instance_credentials::caller(account, arn));
    }
    let role = snapshot.state().role(role_name)?;
    Some(Caller::role_session(account, &role.name, &role.id, session_name))
}

impl RoleGate for IamRoleGate {
    fn check_pass_role(&self, ctx: &RequestContext, role_arn: &str) -> Result<(), String> {
        let snapshot = self.iam.snapshot();
        let facts = RequestFacts { now: ctx.now, source_ip: None, region: ctx.region.to_string(), secure_transport: false };
        let caller = caller_from_arn(&snapshot, &ctx.principal_arn);
        let decision = match &caller {
            Some(c) if c.is_root() => return Ok(()),
            Some(c) => snapshot.authorize_with(c, "iam:PassRole", role_arn, &facts, &[("iam:PassedToService", ECS_TASKS)]),
            None => berth_iam_policy::Decision::ImplicitDeny,
        };
        if decision.is_allowed() {
            Ok(())
        } else {
            Err(berth_iam::directory::denial_message(&ctx.principal_arn, "iam:PassRole", role_arn, &decision))
        }
    }

    fn ecs_can_assume(&self, ctx: &RequestContext, role_arn: &str) -> bool {
        assumable_by_ecs_tasks(&self.iam.snapshot(), ctx, role_arn).is_ok()
    }

    fn task_credentials(
        &self,
        ctx: &RequestContext,
        task_arn: &str,
        task_role_arn: Option<&str>,
        execution_role_arn: Option<&str>,
        now: SystemTime,
    ) -> Option<TaskCredentials> {
        if task_role_arn.is_none() && execution_role_arn.is_none() {
            return None;
        }
        let snapshot = self.iam.snapshot();
        let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
        let mut errors = Vec::new();
        let mut mint = |arn: Option<&str>| {
            let arn = arn?;
            self.mint_for_task(&snapshot, ctx, arn, task_id, now).map_err(|e| errors.push(e)).ok()
        };
        let task_role = mint(task_role_arn);
        let execution_role = mint(execution_role_arn);
        Some(TaskCredentials {
            credentials_id: self.credentials_id(task_arn),
            task_role,
            execution_role,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_iam::MasterKey;
    use berth_iam::model::{Role, User};
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    const ACCOUNT: &str = "123456789012";

    fn role(name: &str, trust: &str) -> Role {
        Role {
            name: name.into(),
            id: format!("AROA{:0>17}", name.to_uppercase()),
            path: "/".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            created_at: 0,
            assume_role_policy_document: trust.into(),
            description: None,
            max_session_duration: 3600,
            inline_policies: BTreeMap::new(),
            attached_policies: vec![],
            tags: vec![],
        }
    }

    fn ctx(principal: &str) -> RequestContext {
        RequestContext {
            account: ACCOUNT.parse().unwrap(),
            region: "us-east-1".parse().unwrap(),
            principal_arn: principal.into(),
            now: UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        }
    }

    async fn gate() -> IamRoleGate {
        let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::memory::MemoryStore::new());
        let iam = Iam::open(store, ACCOUNT.parse().unwrap(), MasterKey::generate()).await.unwrap();
        let trusts_tasks = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let trusts_account = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]}"#;
        iam.mutate(|s| {
            s.roles.insert("app".into(), role("app", trusts_tasks));
            s.roles.insert("human".into(), role("human", trusts_account));
            for (name, attached) in [("dev", vec![]), ("ops", vec!["arn:aws:iam::aws:policy/AmazonECS_FullAccess".to_string()])] {
                s.users.insert(
                    name.into(),
                    User {
                        name: name.into(),
                        id: format!("AIDA{:0>17}", name.to_uppercase()),
                        path: "/".into(),
                        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
                        created_at: 0,
                        inline_policies: BTreeMap::new(),
                        attached_policies: attached,
                        groups: vec![],
                        tags: vec![],
                    },
                );
            }
            Ok(())
        })
        .await
        .unwrap();
        IamRoleGate::new(iam)
    }

    const APP: &str = "arn:aws:iam::123456789012:role/app";
    const HUMAN: &str = "arn:aws:iam::123456789012:role/human";

    #[tokio::test]
    async fn pass_role_follows_the_callers_policies() {
        let g = gate().await;
        assert_eq!(g.check_pass_role(&ctx("arn:aws:iam::123456789012:root"), APP), Ok(()));
        assert_eq!(g.check_pass_role(&ctx("arn:aws:iam::123456789012:user/ops"), APP), Ok(()));
        let denied = g.check_pass_role(&ctx("arn:aws:iam::123456789012:user/dev"), APP).unwrap_err();
        assert_eq!(
            denied,
            "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/app because no identity-based policy allows the iam:PassRole action"
        );
        // Agents pass nothing; unknown principals neither.
        assert!(g.check_pass_role(&ctx("arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a"), APP).is_err());
        assert!(g.check_pass_role(&ctx("arn:aws:iam::123456789012:user/ghost"), APP).is_err());
    }

    #[tokio::test]
    async fn only_roles_trusting_ecs_tasks_get_task_credentials() {
        let g = gate().await;
        let c = ctx("arn:aws:iam::123456789012:root");
        assert!(g.ecs_can_assume(&c, APP));
        assert!(!g.ecs_can_assume(&c, HUMAN));
        assert!(!g.ecs_can_assume(&c, "arn:aws:iam::123456789012:role/missing"));
        assert!(!g.ecs_can_assume(&c, "arn:aws:iam::210987654321:role/app"), "another account's role");

        let task = "arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef";
        let creds = g.task_credentials(&c, task, Some(APP), Some(HUMAN), c.now).unwrap();
        assert_eq!(creds.credentials_id, g.credentials_id(task), "stable per task");
        assert_ne!(creds.credentials_id, g.credentials_id("arn:aws:ecs:us-east-1:123456789012:task/c/other"));
        assert_eq!(creds.credentials_id.len(), 32);
        let task_role = creds.task_role.unwrap();
        assert_eq!(task_role.role_arn, APP);
        assert_eq!(task_role.expiration, berth_clock::civil::iso8601_seconds(1_795_000_000 + TASK_CREDENTIALS_SECS as i64));
        let (claims, secret) = sessions::verify(g.iam.key(), &task_role.access_key_id, &task_role.session_token, 1_795_000_001).unwrap();
        assert_eq!(secret, task_role.secret_access_key);
        assert_eq!(
            claims.subject,
            SessionSubject::AssumedRole { role_name: "app".into(), role_id: "AROA00000000000000APP".into(), session_name: "0123456789abcdef".into() }
        );
        // The execution role does not trust ECS tasks: no session, and why.
        assert!(creds.execution_role.is_none());
        assert!(creds.error.unwrap().contains("does not allow ecs-tasks.amazonaws.com"));
        assert!(g.task_credentials(&c, task, None, None, c.now).is_none());
    }
}
