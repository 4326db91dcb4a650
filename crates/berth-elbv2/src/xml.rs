//! ELBv2's response envelope: `<XResponse xmlns=..><XResult>..</XResult>
//! <ResponseMetadata>..</ResponseMetadata></XResponse>`, written with the
//! query protocols' shared [`XmlWriter`]. Lists are `<Name><member>..`.

use berth_wire::query::xml_escape;
pub use berth_wire::xml_writer::XmlWriter as Xml;

pub const ELBV2_NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

pub fn response(action: &str, request_id: &str) -> Xml {
    Xml::new(
        &format!("<{action}Response xmlns=\"{ELBV2_NAMESPACE}\"><{action}Result>"),
        format!(
            "</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            xml_escape(request_id)
        ),
    )
}
