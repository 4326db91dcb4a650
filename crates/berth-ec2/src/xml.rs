//! A minimal writer for EC2's XML responses. Element names are static
//! strings from the EC2 model; all text goes through `xml_escape`.

use berth_wire::query::xml_escape;

/// The namespace of every EC2 response of API version 2016-11-15.
pub const EC2_NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub use berth_wire::xml_writer::XmlWriter as Xml;

/// `<?xml ...?><{Action}Response xmlns="..."><requestId>..</requestId>`.
pub fn response(root: &'static str, request_id: &str) -> Xml {
    let mut x = Xml::new(
        &format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{EC2_NAMESPACE}\">"),
        format!("</{root}>"),
    );
    x.text("requestId", request_id);
    x
}

/// EC2's own error document (not the generic query-protocol one): what
/// botocore's EC2 parser reads, `RequestID` spelt with a capital D.
pub fn error_document(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        xml_escape(code),
        xml_escape(message),
        xml_escape(request_id)
    )
}
