//! A minimal writer for ELBv2's XML responses: `<XResponse xmlns=..>
//! <XResult>..</XResult><ResponseMetadata>..</ResponseMetadata></XResponse>`.
//! Lists are `<Name><member>..</member></Name>`, as the query protocol has it.

use berth_wire::query::xml_escape;

pub const ELBV2_NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

pub struct Xml {
    out: String,
    action: String,
    request_id: String,
}

impl Xml {
    pub fn response(action: &str, request_id: &str) -> Xml {
        let mut out = String::with_capacity(2048);
        out.push_str(&format!(
            "<{action}Response xmlns=\"{ELBV2_NAMESPACE}\"><{action}Result>"
        ));
        Xml {
            out,
            action: action.to_string(),
            request_id: request_id.to_string(),
        }
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

    pub fn text(&mut self, tag: &str, value: &str) -> &mut Xml {
        self.open(tag);
        self.out.push_str(&xml_escape(value));
        self.close(tag)
    }

    pub fn opt(&mut self, tag: &str, value: Option<&str>) -> &mut Xml {
        if let Some(v) = value {
            self.text(tag, v);
        }
        self
    }

    pub fn num(&mut self, tag: &str, value: impl std::fmt::Display) -> &mut Xml {
        self.text(tag, &value.to_string())
    }

    pub fn bool(&mut self, tag: &str, value: bool) -> &mut Xml {
        self.text(tag, if value { "true" } else { "false" })
    }

    /// `<tag>` + one `<member>` per item + `</tag>` (an empty `<tag/>` reads as `[]`).
    pub fn members<T>(
        &mut self,
        tag: &str,
        items: &[T],
        mut each: impl FnMut(&mut Xml, &T),
    ) -> &mut Xml {
        if items.is_empty() {
            self.out.push_str(&format!("<{tag}/>"));
            return self;
        }
        self.open(tag);
        for item in items {
            self.open("member");
            each(self, item);
            self.close("member");
        }
        self.close(tag)
    }

    pub fn strings(&mut self, tag: &str, items: &[String]) -> &mut Xml {
        self.members(tag, items, |x, s| {
            x.out.push_str(&xml_escape(s));
        })
    }

    pub fn finish(self) -> String {
        let Xml {
            mut out,
            action,
            request_id,
        } = self;
        out.push_str(&format!(
            "</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            xml_escape(&request_id)
        ));
        out
    }
}
