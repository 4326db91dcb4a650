//! Where each ECS resource lives in the store. Every key starts with
//! `ecs/{account}/{region}/`, so each region of each account is its own
//! namespace, as in AWS.

use crate::context::RequestContext;

pub struct Keys {
    root: String,
}

impl Keys {
    pub fn for_request(ctx: &RequestContext) -> Keys {
        Keys::new(&ctx.account, &ctx.region)
    }

    /// The keys of one account and region, for callers outside a request
    /// (controllers).
    pub fn new(account: &berth_arn::AccountId, region: &berth_arn::Region) -> Keys {
        Keys { root: format!("ecs/{account}/{region}/") }
    }

    pub fn clusters(&self) -> String {
        format!("{}clusters/", self.root)
    }
    pub fn cluster(&self, name: &str) -> String {
        format!("{}clusters/{name}", self.root)
    }
    pub fn capacity_providers(&self) -> String {
        format!("{}capacity-providers/", self.root)
    }
    pub fn capacity_provider(&self, name: &str) -> String {
        format!("{}capacity-providers/{name}", self.root)
    }
    pub fn task_definition_families(&self) -> String {
        format!("{}task-definition-families/", self.root)
    }
    pub fn task_definition_family(&self, family: &str) -> String {
        format!("{}task-definition-families/{family}", self.root)
    }
    pub fn task_definitions(&self) -> String {
        format!("{}task-definitions/", self.root)
    }
    pub fn task_definitions_of(&self, family: &str) -> String {
        format!("{}task-definitions/{family}/", self.root)
    }
    /// Revisions are zero-padded so that key order is revision order.
    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        format!("{}task-definitions/{family}/{revision:010}", self.root)
    }
    /// Tags live beside, not inside, the resource they tag, keyed by its ARN.
    pub fn tags(&self, arn: &str) -> String {
        format!("{}tags/{arn}", self.root)
    }
    pub fn container_instances_of(&self, cluster: &str) -> String {
        format!("{}container-instances/{cluster}/", self.root)
    }
    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!("{}container-instances/{cluster}/{id}", self.root)
    }
    pub fn attributes_of(&self, cluster: &str) -> String {
        format!("{}attributes/{cluster}/", self.root)
    }
    pub fn attributes(&self, cluster: &str, target_type: &str, target_id: &str) -> String {
        format!("{}attributes/{cluster}/{target_type}/{target_id}", self.root)
    }
    /// Every service of every cluster (the prefix a controller watches).
    pub fn services(&self) -> String {
        format!("{}services/", self.root)
    }
    /// Only service records live under `services_of(cluster)` (cluster
    /// counts read every record there).
    pub fn services_of(&self, cluster: &str) -> String {
        format!("{}services/{cluster}/", self.root)
    }
    pub fn service(&self, cluster: &str, name: &str) -> String {
        format!("{}services/{cluster}/{name}", self.root)
    }
    /// The service controller's index of a service's tasks: every task it
    /// started that it has not yet seen STOPPED (and counted, if a failure).
    pub fn service_tasks_of(&self, cluster: &str, service: &str) -> String {
        format!("{}service-tasks/{cluster}/{service}/", self.root)
    }
    pub fn service_task(&self, cluster: &str, service: &str, task_id: &str) -> String {
        format!("{}service-tasks/{cluster}/{service}/{task_id}", self.root)
    }
    pub fn tasks_of(&self, cluster: &str) -> String {
        format!("{}tasks/{cluster}/", self.root)
    }
    /// One task record. Only task records live under `tasks_of(cluster)`
    /// (cluster counts read every record there).
    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}tasks/{cluster}/{id}", self.root)
    }
    /// Per-instance index of the tasks that still hold resources on it
    /// (every task placed there whose lastStatus is not yet STOPPED).
    pub fn instance_tasks_of(&self, cluster: &str) -> String {
        format!("{}instance-tasks/{cluster}/", self.root)
    }
    pub fn instance_tasks(&self, cluster: &str, instance_id: &str) -> String {
        format!("{}instance-tasks/{cluster}/{instance_id}/", self.root)
    }
    pub fn instance_task(&self, cluster: &str, instance_id: &str, task_id: &str) -> String {
        format!("{}instance-tasks/{cluster}/{instance_id}/{task_id}", self.root)
    }
    /// Rewritten by every transaction that changes what an instance should
    /// run (placement, stop, status change): its mod_revision is the
    /// agent session's version, and placements compare it.
    pub fn instance_epoch(&self, cluster: &str, instance_id: &str) -> String {
        format!("{}instance-epochs/{cluster}/{instance_id}", self.root)
    }
    pub fn instance_epochs_of(&self, cluster: &str) -> String {
        format!("{}instance-epochs/{cluster}/", self.root)
    }
    /// A name for the in-process queue of placers of one cluster (never a
    /// stored key).
    pub fn instance_epochs_lock(&self, cluster: &str) -> String {
        format!("{}placement-lock/{cluster}", self.root)
    }
    /// RunTask `clientToken` idempotency records.
    pub fn run_task_token(&self, cluster: &str, token: &str) -> String {
        format!("{}run-task-tokens/{cluster}/{token}", self.root)
    }
    pub fn account_settings(&self) -> String {
        format!("{}account-settings/", self.root)
    }
    /// `principal` is an ARN or `default` for the account default.
    pub fn account_setting(&self, principal: &str, name: &str) -> String {
        format!("{}account-settings/{principal}/{name}", self.root)
    }
}
