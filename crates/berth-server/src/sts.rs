//! The part of STS the control plane needs now: GetCallerIdentity, so
//! `aws sts get-caller-identity` confirms which account a client reaches.

use berth_ecs::RequestContext;
use berth_wire::query::xml_escape;

pub fn get_caller_identity(ctx: &RequestContext, request_id: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        xml_escape(&ctx.principal_arn),
        xml_escape(ctx.account.as_str()),
        xml_escape(ctx.account.as_str()),
        xml_escape(request_id)
    )
}
