//! A minimal writer for EC2's XML responses. Element names are static
//! strings from the EC2 model; all text goes through `xml_escape`.

use berth_wire::query::xml_escape;

/// The namespace of every EC2 response of API version 2016-11-15.
pub const EC2_NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub struct Xml {
    out: String,
    root: &'static str,
}

impl Xml {
    /// `<?xml ...?><{Action}Response xmlns="..."><requestId>..</requestId>`.
    pub fn response(root: &'static str, request_id: &str) -> Xml {
        let mut x = Xml { out: String::with_capacity(2048), root };
        x.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.out.push_str(&format!("<{root} xmlns=\"{EC2_NAMESPACE}\">"));
        x.text("requestId", request_id);
        x
    }

    pub fn open(&mut self, tag: &str) -> &mut Xml {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Xml {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `<tag/>`: an empty list, which SDKs read as `[]`.
    pub fn empty(&mut self, tag: &str) -> &mut Xml {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push_str("/>");
        self
    }

    pub fn text(&mut self, tag: &str, value: &str) -> &mut Xml {
        self.open(tag);
        self.out.push_str(&xml_escape(value));
        self.close(tag)
    }

    pub fn bool(&mut self, tag: &str, value: bool) -> &mut Xml {
        self.text(tag, if value { "true" } else { "false" })
    }

    pub fn int(&mut self, tag: &str, value: u32) -> &mut Xml {
        self.text(tag, &value.to_string())
    }

    /// A list element: `<tag>` + one `<item>` per element + `</tag>`, or
    /// `<tag/>` when there are none.
    pub fn items<T>(&mut self, tag: &str, items: &[T], mut each: impl FnMut(&mut Xml, &T)) -> &mut Xml {
        if items.is_empty() {
            return self.empty(tag);
        }
        self.open(tag);
        for item in items {
            self.open("item");
            each(self, item);
            self.close("item");
        }
        self.close(tag)
    }

    pub fn finish(mut self) -> String {
        let root = self.root;
        self.close(root);
        self.out
    }
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
