//! IAM's response envelope and the XML of its entities, written with the
//! query protocols' shared [`XmlWriter`].
//!
//! Policy documents go out percent-encoded, as IAM sends them (botocore
//! url-decodes every `policyDocumentType` and hands callers a dict).

use crate::builtin::AwsManagedPolicy;
use crate::model::{
    Group, IamState, InstanceProfile, ManagedPolicy, PolicyVersion, Role, Tag, User,
};
use berth_wire::query::xml_escape;
pub use berth_wire::xml_writer::XmlWriter as Xml;

pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// `<{action}Response><{action}Result>` … written by the caller … `</…>`.
pub fn response(action: &str, request_id: &str) -> Xml {
    Xml::new(
        &format!("<{action}Response xmlns=\"{IAM_NAMESPACE}\"><{action}Result>"),
        format!(
            "</{action}Result>{}</{action}Response>",
            metadata(request_id)
        ),
    )
}

/// The body of an action without a result (DeleteUser, TagRole, ...).
pub fn no_result(action: &str, request_id: &str) -> String {
    format!(
        "<{action}Response xmlns=\"{IAM_NAMESPACE}\">{}</{action}Response>",
        metadata(request_id)
    )
}

fn metadata(request_id: &str) -> String {
    format!(
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>",
        xml_escape(request_id)
    )
}

pub fn date(secs: u64) -> String {
    berth_clock::civil::iso8601_seconds(secs as i64)
}

/// RFC 3986 percent-encoding of everything but the unreserved characters,
/// as IAM encodes policy documents.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `IsTruncated`, and `Marker` when there is a next page.
pub fn paging(x: &mut Xml, next: Option<&str>) {
    x.bool("IsTruncated", next.is_some());
    x.opt("Marker", next);
}

pub fn tags(x: &mut Xml, tag: &str, tags: &[Tag]) {
    x.members(tag, tags, |x, t| {
        x.text("Key", &t.key).text("Value", &t.value);
    });
}

/// A user's fields; `with_tags` for GetUser and CreateUser (ListUsers
/// leaves them out, as IAM does).
pub fn user(x: &mut Xml, u: &User, with_tags: bool) {
    x.text("Path", &u.path)
        .text("UserName", &u.name)
        .text("UserId", &u.id)
        .text("Arn", &u.arn)
        .text("CreateDate", &date(u.created_at));
    if with_tags && !u.tags.is_empty() {
        tags(x, "Tags", &u.tags);
    }
}

pub fn group(x: &mut Xml, g: &Group) {
    x.text("Path", &g.path)
        .text("GroupName", &g.name)
        .text("GroupId", &g.id)
        .text("Arn", &g.arn)
        .text("CreateDate", &date(g.created_at));
}

/// How much of a role to write: GetRole's whole record, CreateRole's (no
/// RoleLastUsed), or the list form (no tags, no RoleLastUsed).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RoleView {
    Full,
    Created,
    Listed,
}

pub fn role(x: &mut Xml, r: &Role, view: RoleView) {
    x.text("Path", &r.path)
        .text("RoleName", &r.name)
        .text("RoleId", &r.id)
        .text("Arn", &r.arn)
        .text("CreateDate", &date(r.created_at))
        .text(
            "AssumeRolePolicyDocument",
            &url_encode(&r.assume_role_policy_document),
        )
        .opt("Description", r.description.as_deref())
        .num("MaxSessionDuration", r.max_session_duration);
    if view != RoleView::Listed && !r.tags.is_empty() {
        tags(x, "Tags", &r.tags);
    }
    if view == RoleView::Full {
        x.empty("RoleLastUsed");
    }
}

/// A customer managed policy; `full` adds the description and tags
/// (GetPolicy, CreatePolicy) that ListPolicies leaves out.
pub fn policy(x: &mut Xml, p: &ManagedPolicy, full: bool) {
    x.text("PolicyName", &p.name)
        .text("PolicyId", &p.id)
        .text("Arn", &p.arn)
        .text("Path", &p.path)
        .text("DefaultVersionId", &p.default_version_id)
        .num("AttachmentCount", p.attachment_count)
        .num("PermissionsBoundaryUsageCount", 0)
        .bool("IsAttachable", true);
    if full {
        x.opt("Description", p.description.as_deref());
    }
    x.text("CreateDate", &date(p.created_at))
        .text("UpdateDate", &date(p.updated_at));
    if full && !p.tags.is_empty() {
        tags(x, "Tags", &p.tags);
    }
}

/// When the AWS managed policies Berth ships were "created" (they have no
/// record; IAM shows AdministratorAccess's date for the oldest ones).
pub const AWS_POLICY_DATE: u64 = 1_423_248_000;

pub fn aws_policy(x: &mut Xml, p: &AwsManagedPolicy, attachments: u32, full: bool) {
    x.text("PolicyName", p.name)
        .text("PolicyId", &crate::builtin::aws_managed_id(p))
        .text("Arn", &p.arn())
        .text("Path", p.path)
        .text("DefaultVersionId", "v1")
        .num("AttachmentCount", attachments)
        .num("PermissionsBoundaryUsageCount", 0)
        .bool("IsAttachable", true);
    if full {
        x.text("Description", p.description);
    }
    x.text("CreateDate", &date(AWS_POLICY_DATE))
        .text("UpdateDate", &date(AWS_POLICY_DATE));
}

/// A policy version; the document only where IAM includes it (GetPolicyVersion,
/// CreatePolicyVersion — not ListPolicyVersions).
pub fn version(x: &mut Xml, v: &PolicyVersion, is_default: bool, with_document: bool) {
    if with_document {
        x.text("Document", &url_encode(&v.document));
    }
    x.text("VersionId", &v.version_id)
        .bool("IsDefaultVersion", is_default)
        .text("CreateDate", &date(v.created_at));
}

pub fn instance_profile(x: &mut Xml, p: &InstanceProfile, state: &IamState) {
    x.text("Path", &p.path)
        .text("InstanceProfileName", &p.name)
        .text("InstanceProfileId", &p.id)
        .text("Arn", &p.arn)
        .text("CreateDate", &date(p.created_at));
    let roles: Vec<&Role> = p.roles.iter().filter_map(|n| state.role(n)).collect();
    x.members("Roles", &roles, |x, r| role(x, r, RoleView::Listed));
    if !p.tags.is_empty() {
        tags(x, "Tags", &p.tags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_documents_as_iam_does() {
        assert_eq!(
            url_encode(r#"{"a": "b/c"}"#),
            "%7B%22a%22%3A%20%22b%2Fc%22%7D"
        );
        assert_eq!(url_encode("a-_.~Z9"), "a-_.~Z9");
    }

    #[test]
    fn envelopes() {
        let mut x = response("GetUser", "r1");
        x.text("A", "b");
        assert_eq!(
            x.finish(),
            format!(
                "<GetUserResponse xmlns=\"{IAM_NAMESPACE}\"><GetUserResult><A>b</A></GetUserResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></GetUserResponse>"
            )
        );
        assert!(no_result("DeleteUser", "r").starts_with("<DeleteUserResponse xmlns="));
    }
}
