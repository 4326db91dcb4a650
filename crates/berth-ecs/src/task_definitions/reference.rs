//! What a `taskDefinition` member names: a family (its latest ACTIVE
//! revision), `family:revision`, or a task definition ARN of the caller's
//! account and region.

use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use berth_arn::Arn;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Family(String),
    Revision(String, u32),
}

impl Reference {
    pub fn family(&self) -> &str {
        match self {
            Reference::Family(f) | Reference::Revision(f, _) => f,
        }
    }
}

fn revision(family: &str, number: &str) -> EcsResult<Reference> {
    // Revisions are positive decimal integers; anything else is malformed
    // rather than merely unknown.
    match number.parse::<u32>() {
        Ok(n) if number.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Reference::Revision(family.to_string(), n))
        }
        _ => Err(EcsError::invalid(format!(
            "Invalid revision number. Number: {number}"
        ))),
    }
}

/// `Ok(None)` when the text cannot name a task definition here (an ARN of
/// another service, region or account): callers report that as unknown.
pub fn parse(ctx: &RequestContext, text: &str) -> EcsResult<Option<Reference>> {
    if text.starts_with("arn:") {
        let Ok(arn) = text.parse::<Arn>() else {
            return Ok(None);
        };
        let same_place = arn.service == "ecs"
            && arn.region == ctx.region.as_str()
            && arn.account == ctx.account.as_str();
        return match arn.resource_type_and_id() {
            Some(("task-definition", id)) if same_place => match id.rsplit_once(':') {
                Some((family, number)) => revision(family, number).map(Some),
                None => Ok(Some(Reference::Family(id.to_string()))),
            },
            _ => Ok(None),
        };
    }
    match text.rsplit_once(':') {
        Some((family, number)) => revision(family, number).map(Some),
        None => Ok(Some(Reference::Family(text.to_string()))),
    }
}

pub fn arn(ctx: &RequestContext, family: &str, revision: u32) -> String {
    ctx.arn(format!("task-definition/{family}:{revision}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ctx;

    #[test]
    fn forms() {
        let c = ctx();
        assert_eq!(
            parse(&c, "web").unwrap(),
            Some(Reference::Family("web".into()))
        );
        assert_eq!(
            parse(&c, "web:3").unwrap(),
            Some(Reference::Revision("web".into(), 3))
        );
        assert_eq!(
            parse(
                &c,
                "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"
            )
            .unwrap(),
            Some(Reference::Revision("web".into(), 3))
        );
        assert_eq!(
            parse(
                &c,
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3"
            )
            .unwrap(),
            None
        );
        assert_eq!(
            parse(
                &c,
                "arn:aws:ecs:us-east-1:210987654321:task-definition/web:3"
            )
            .unwrap(),
            None
        );
        assert_eq!(
            parse(&c, "arn:aws:ecs:us-east-1:123456789012:cluster/web").unwrap(),
            None
        );
        assert_eq!(parse(&c, "arn:nonsense").unwrap(), None);
        for bad in ["web:", "web:x", "web:-1", "web:+1", "web:99999999999"] {
            assert!(
                matches!(parse(&c, bad), Err(EcsError::InvalidParameter(_))),
                "{bad}"
            );
        }
    }
}
