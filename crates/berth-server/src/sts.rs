//! The part of STS the control plane needs now: GetCallerIdentity, so
//! `aws sts get-caller-identity` confirms which account a client reaches.

use berth_ecs::RequestContext;
use berth_wire::query::xml_escape;

/// `user_id` is the account id for the root, `{roleId}:{session}` for an
/// assumed role (an instance principal), as AWS answers.
pub fn get_caller_identity(ctx: &RequestContext, user_id: &str, request_id: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        xml_escape(&ctx.principal_arn),
        xml_escape(user_id),
        xml_escape(ctx.account.as_str()),
        xml_escape(request_id)
    )
}
